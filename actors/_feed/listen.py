"""TCP listeners for the feed and the page, optionally shared by several processes.

One job: :func:`open_listeners` binds the listening sockets of ``host:port``
like ``trio.open_tcp_listeners``, and with ``reuse_port=True`` sets
``SO_REUSEPORT`` first, so that several processes (``serve --workers N``, or
``serve --reuse-port`` started N times) can listen on the same port and the
kernel spreads the incoming connections over them.

Rules
-----

Rule 1 (what SO_REUSEPORT means). On Linux the kernel hashes each new
connection (its addresses and ports) to one of the listening sockets of the
port: connections are spread, never moved; a client that reconnects may land
on another process. Only sockets of the same user may join a port's group.
Other systems may accept the option without spreading connections (macOS and
the BSDs hand them to one socket); the docs say so, the code does not guess.

Rule 2 (missing option). Where the platform has no ``SO_REUSEPORT`` (Windows),
or the kernel refuses it, ``reuse_port=True`` is a ``ConfigurationError`` naming
the platform, raised before anything is bound.
"""

from __future__ import annotations

import errno
import socket as stdlib_socket
import sys
from typing import Final

import trio

from runtime._base.errors import ConfigurationError

__all__ = ["open_listeners", "reuse_port_option"]

_BACKLOG: Final = 1024


def reuse_port_option() -> int:
    """The ``SO_REUSEPORT`` constant of this platform.

    Raises:
        ConfigurationError: the platform has none (Rule 2).
    """
    option = getattr(stdlib_socket, "SO_REUSEPORT", None)
    if not isinstance(option, int):
        raise ConfigurationError(
            f"reuse_port needs the SO_REUSEPORT socket option, which this platform "
            f"({sys.platform!r}) does not have; run one process per port instead."
        )
    return option


async def open_listeners(
    host: str | None, port: int, *, reuse_port: bool = False
) -> list[trio.SocketListener]:
    """Listening sockets for ``host:port`` (``None``: every interface; 0: any free port).

    Raises:
        ConfigurationError: ``reuse_port`` on a platform without ``SO_REUSEPORT``.
        OSError: the address cannot be bound (in use, not local, ...).
    """
    if type(port) is not int or not 0 <= port < 65536:
        raise ConfigurationError(f"port must be a TCP port number or 0, got {port!r}.")
    option = reuse_port_option() if reuse_port else None
    addresses = await trio.socket.getaddrinfo(
        host, port, type=stdlib_socket.SOCK_STREAM, flags=stdlib_socket.AI_PASSIVE
    )
    listeners: list[trio.SocketListener] = []
    try:
        for family, kind, proto, _, address in addresses:
            sock = trio.socket.socket(family, kind, proto)
            try:
                if sys.platform != "win32":
                    sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
                if option is not None:
                    try:
                        sock.setsockopt(stdlib_socket.SOL_SOCKET, option, 1)
                    except OSError as exc:
                        if exc.errno not in (errno.ENOPROTOOPT, errno.EINVAL):
                            raise
                        raise ConfigurationError(
                            f"reuse_port: this platform ({sys.platform!r}) refused the "
                            f"SO_REUSEPORT socket option ({errno.errorcode[exc.errno]})."
                        ) from None
                if family == stdlib_socket.AF_INET6:
                    sock.setsockopt(stdlib_socket.IPPROTO_IPV6, stdlib_socket.IPV6_V6ONLY, 1)
                await sock.bind(address)
                sock.listen(_BACKLOG)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    return listeners
