"""Start a throwaway ``redis-server`` on 127.0.0.1 (tests, benchmarks, ``make demo``-like runs).

:func:`open_redis_server` runs Debian's (or any) ``redis-server`` binary as a child
process on a free loopback port, in a directory of the caller's, with persistence
off, and stops it when the block ends. Readiness is read from the server's own
log ("Ready to accept connections"), never guessed with a sleep.

:func:`open_redis_cluster` runs a Redis Cluster of such servers (``--cluster-enabled
yes``), joins them with ``redis-cli --cluster create`` and waits, polling ``CLUSTER
INFO`` a bounded number of times, until every node says ``cluster_state:ok``.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Final

import msgspec
import trio

from runtime._base.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

__all__ = [
    "RedisCluster",
    "RedisServer",
    "RedisServerMissing",
    "find_redis_cli",
    "find_redis_server",
    "open_redis_cluster",
    "open_redis_server",
]

_READY: Final = b"Ready to accept connections"
_ATTEMPTS: Final = 3
_CLUSTER_POLLS: Final = 200
_BUS_OFFSET: Final = 10_000  # a cluster node's bus port is its port + 10000
_CLUSTER_PORTS: Final = (20_000, 55_536)  # randrange: 20000..55535 (Redis refuses higher)
_SEARCH_PATH: Final = "/usr/sbin:/usr/bin:/usr/local/bin"


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


class RedisCluster(msgspec.Struct, frozen=True, kw_only=True):
    """A running Redis Cluster: its nodes and the URL clients use (any node's)."""

    nodes: tuple[RedisServer, ...]

    @property
    def url(self) -> str:
        first = self.nodes[0]
        return f"redis+cluster://{first.host}:{first.port}"


def find_redis_server() -> str:
    """The path of ``redis-server``.

    Raises:
        RedisServerMissing: it is not on ``PATH`` (nor in ``/usr/sbin``, ``/usr/bin``).
    """
    return _find("redis-server")


def find_redis_cli() -> str:
    """The path of ``redis-cli`` (needed to create a cluster).

    Raises:
        RedisServerMissing: it is not on ``PATH`` (nor in ``/usr/sbin``, ``/usr/bin``).
    """
    return _find("redis-cli")


def _find(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=_SEARCH_PATH)
    if found is None:
        raise RedisServerMissing(
            f"{name} is not installed (Debian: apt-get install redis-server, which brings "
            "redis-cli too; `make test` installs it when run as root)."
        )
    return found


def _free_port(*, cluster: bool = False) -> int:
    """A free loopback port; for a cluster node, one at most 55535 whose cluster bus
    port (10000 higher) is free too."""
    if not cluster:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port
    for _ in range(100):
        port = random.randrange(_CLUSTER_PORTS[0], _CLUSTER_PORTS[1])
        if _bindable(port) and _bindable(port + _BUS_OFFSET):
            return port
    raise OSError(f"no free port pair (p, p + 10000) with p in {_CLUSTER_PORTS!r}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@asynccontextmanager
async def open_redis_server(
    directory: Path, *, cluster: bool = False
) -> AsyncIterator[RedisServer]:
    """Run ``redis-server`` on a free 127.0.0.1 port until the block ends.

    Args:
        directory: where the server may write (its working directory); no data
            is persisted (``save ""``, ``appendonly no``).
        cluster: start it as a cluster node (``--cluster-enabled yes``, its
            cluster config file in ``directory``), not yet part of any cluster.

    Yields:
        The running server; it accepts connections when the block starts.

    Raises:
        RedisServerMissing: no ``redis-server`` binary.
        OSError: the server did not start (its last log lines are in the message).
    """
    binary = find_redis_server()
    last = b""
    for _ in range(_ATTEMPTS):  # the free port may be taken between probe and bind
        port = _free_port(cluster=cluster)
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
        if cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
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


@asynccontextmanager
async def open_redis_cluster(directory: Path, *, masters: int = 3) -> AsyncIterator[RedisCluster]:
    """Run a Redis Cluster of ``masters`` nodes (no replicas) until the block ends.

    Each node is :func:`open_redis_server` with ``cluster=True`` in its own
    subdirectory of ``directory``; ``redis-cli --cluster create`` assigns the 16384
    slots, then every node is polled (``CLUSTER INFO``, a bounded number of times)
    until it reports ``cluster_state:ok``.

    Raises:
        RedisServerMissing: no ``redis-server`` or no ``redis-cli`` binary.
        ConfigurationError: ``masters`` is below 3 (the least Redis Cluster accepts).
        OSError: the cluster was not created or did not become ready.
    """
    if type(masters) is not int or masters < 3:
        raise ConfigurationError(f"masters must be an int >= 3, got {masters!r}.")
    cli = find_redis_cli()
    find_redis_server()
    async with AsyncExitStack() as stack:
        nodes: list[RedisServer] = []
        for index in range(masters):
            home = directory / f"node{index}"
            home.mkdir(exist_ok=True)
            nodes.append(await stack.enter_async_context(open_redis_server(home, cluster=True)))
        addresses = [f"{n.host}:{n.port}" for n in nodes]
        create = await trio.run_process(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_stdout=True,
            stderr=subprocess.STDOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if create.returncode != 0:
            raise OSError(f"redis-cli --cluster create failed: {create.stdout[-400:]!r}")
        for node in nodes:
            await _until_cluster_ok(cli, node)
        yield RedisCluster(nodes=tuple(nodes))


async def _until_cluster_ok(cli: str, node: RedisServer) -> None:
    """Poll ``CLUSTER INFO`` on ``node`` until ``cluster_state:ok`` (bounded)."""
    info = b""
    for _ in range(_CLUSTER_POLLS):
        reply = await trio.run_process(
            [cli, "-h", node.host, "-p", str(node.port), "cluster", "info"],
            capture_stdout=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        info = reply.stdout
        if b"cluster_state:ok" in info:
            return
        await trio.sleep(0.05)  # the nodes are still exchanging gossip: poll again
    raise OSError(f"the cluster node {node.port} did not become ready: {info[-400:]!r}")
