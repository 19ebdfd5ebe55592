"""Start a throwaway ``redis-server`` on 127.0.0.1 (tests, benchmarks, ``make demo``-like runs).

:func:`open_redis_server` runs Debian's (or any) ``redis-server`` binary as a child
process on a free loopback port, in a directory of the caller's, with persistence
off, and stops it when the block ends. Readiness is read from the server's own
log ("Ready to accept connections"), never guessed with a sleep.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import msgspec
import trio

from runtime._base.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

__all__ = ["RedisServer", "RedisServerMissing", "find_redis_server", "open_redis_server"]

_READY: Final = b"Ready to accept connections"
_ATTEMPTS: Final = 3


class RedisServerMissing(ConfigurationError, FileNotFoundError):
    """No ``redis-server`` binary was found (install Debian's ``redis-server`` package)."""


class RedisServer(msgspec.Struct, frozen=True, kw_only=True):
    """A running server: its port and the URL clients use."""

    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def find_redis_server() -> str:
    """The path of ``redis-server``.

    Raises:
        RedisServerMissing: it is not on ``PATH`` (nor in ``/usr/sbin``, ``/usr/bin``).
    """
    found = shutil.which("redis-server") or shutil.which(
        "redis-server", path="/usr/sbin:/usr/bin:/usr/local/bin"
    )
    if found is None:
        raise RedisServerMissing(
            "redis-server is not installed (Debian: apt-get install redis-server; "
            "`make test` installs it when run as root)."
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def open_redis_server(directory: Path) -> AsyncIterator[RedisServer]:
    """Run ``redis-server`` on a free 127.0.0.1 port until the block ends.

    Args:
        directory: where the server may write (its working directory); no data
            is persisted (``save ""``, ``appendonly no``).

    Yields:
        The running server; it accepts connections when the block starts.

    Raises:
        RedisServerMissing: no ``redis-server`` binary.
        OSError: the server did not start (its last log lines are in the message).
    """
    binary = find_redis_server()
    last = b""
    for _ in range(_ATTEMPTS):  # the free port may be taken between probe and bind
        port = _free_port()
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", "",
            "--loglevel", "notice",
            "--daemonize", "no",
        ]  # fmt: skip
        process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            assert process.stdout is not None
            last = await _until_ready(process.stdout)
            if _READY in last:
                # Nothing reads the log from here on: at "notice" level the server
                # logs its start and its shutdown only, far below a pipe's buffer.
                yield RedisServer(host="127.0.0.1", port=port, pid=process.pid)
                return
        finally:
            with trio.CancelScope(shield=True):
                process.terminate()
                with trio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                if process.stdout is not None:
                    await process.stdout.aclose()
    raise OSError(f"redis-server did not start: {last[-400:].decode(errors='replace')}")


async def _until_ready(stdout: trio.abc.ReceiveStream) -> bytes:
    """Read the log until the server is ready (returns it) or exits (returns its tail)."""
    seen = b""
    while _READY not in seen:
        chunk = await stdout.receive_some()
        if not chunk:
            return seen
        seen = seen[-4096:] + chunk
    return seen
