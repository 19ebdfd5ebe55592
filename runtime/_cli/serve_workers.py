"""``serve --redis URL --workers N``: N ``serve`` processes behind one page port and one feed port.

The parent process serves nothing itself. It fixes the two ports (reserving a
free one when asked for 0), starts N child ``serve --redis`` processes that bind
both ports with ``SO_REUSEPORT`` (``actors._feed.listen``), waits until each
listens, and reports one banner. The kernel spreads new connections over the
children; each child follows every run in Redis, so any child serves any
client, and a client that reconnects to another child resumes with ``after=``.

Rules
-----

Rule 1 (tasks and processes). One nursery owns one task per child; the task
owns the child's process from start to reaping. Nothing outlives
:func:`serve_processes`: on cancellation (Ctrl-C, SIGTERM) each task sends its
child SIGTERM, waits up to ``STOP_TIMEOUT`` seconds for its graceful stop
(websockets closed with 1001), then kills it. Children run in their own
session, so a terminal's Ctrl-C reaches the parent only and each child is
stopped exactly once; each child also stops when its stdin (a pipe from the
parent) closes, so a parent that is killed outright leaves no child behind.

Rule 2 (no silent restart). A child that exits, for whatever reason, is
reported (index, pid, exit status or signal) as a ``ChildProcessError``; the
other children are stopped and the command exits 1. Restarting is left to the
service manager (systemd, Kubernetes) that restarts the command, or run N
independent ``serve --reuse-port`` processes, each restarted on its own.

Rule 3 (secrets). The feed token and the Redis URL (which may carry a password)
go to the children in their environment (``OPENROUTER_TRIO_FEED_TOKEN``,
``OPENROUTER_TRIO_REDIS_URL``), never on their command line.

Rule 4 (once). ``--sessions N`` is submitted by child 0 only.
"""

from __future__ import annotations

import contextlib
import signal
import socket as stdlib_socket
import subprocess
import sys
from typing import TYPE_CHECKING, Final

import trio

from actors._feed.listen import reuse_port_option
from actors._feed.server import DashboardAddress
from runtime._cli.redis_url import REDIS_URL_ENV

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from runtime._cli.serve import ServeOptions

__all__ = ["STOP_TIMEOUT", "child_argv", "serve_processes"]

STOP_TIMEOUT: Final = 10.0
"""Seconds a child has to stop after SIGTERM before it is killed."""

_READY: Final = b"open the dashboard"


def child_argv(options: ServeOptions, index: int, page_port: int, feed_port: int) -> list[str]:
    """The command line of child ``index`` (no secret: the token and the Redis URL are
    in its environment, Rule 3)."""
    return [
        sys.executable, "-m", "runtime", "serve", "--supervised", "--reuse-port",
        "--host", options.host,
        "--port", str(page_port), "--feed-port", str(feed_port),
        "--sessions", str(options.sessions if index == 0 else 0),
        "--interval", repr(options.interval), "--concurrency", str(options.concurrency),
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def _reserved(host: str, port: int) -> AsyncIterator[int]:
    """Hold ``host:port`` (bound, never listening) with ``SO_REUSEPORT``; yield the port.

    A bound socket that does not listen receives no connections, but keeps a port
    chosen for 0 from being taken by anything but the children (which join it).
    """
    option = reuse_port_option()
    family, kind, proto, _, address = (
        await trio.socket.getaddrinfo(host, port, type=stdlib_socket.SOCK_STREAM)
    )[0]
    with trio.socket.socket(family, kind, proto) as sock:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
        sock.setsockopt(stdlib_socket.SOL_SOCKET, option, 1)
        await sock.bind(address)
        yield int(sock.getsockname()[1])


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


async def _stop(process: trio.Process) -> None:
    """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; reap (shielded: runs on cancellation)."""
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                await pipe.aclose()


async def _child(
    index: int,
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run child ``index`` until it exits (Rule 2) or this task is cancelled (Rule 1)."""
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        seen = b""
        while _READY not in seen or not seen.endswith(b"\n"):
            chunk = await process.stdout.receive_some()
            if not chunk:
                code = await process.wait()
                raise ChildProcessError(
                    f"serve process {index} (pid {process.pid}) {_status(code)} before it "
                    "listened (its error is above)"
                )
            seen += chunk
        task_status.started(process.pid)
        while await process.stdout.receive_some():
            pass  # its banner is ours to print; keep the pipe drained
        code = await process.wait()
        raise ChildProcessError(
            f"serve process {index} (pid {process.pid}) {_status(code)}; "
            "the other serve processes were stopped"
        )
    finally:
        await _stop(process)


async def serve_processes(
    options: ServeOptions,
    token: str,
    environ: Mapping[str, str],
    *,
    task_status: trio.TaskStatus[tuple[DashboardAddress, tuple[int, ...]]] = (
        trio.TASK_STATUS_IGNORED
    ),
) -> None:
    """Start ``options.workers`` children, report where they listen, supervise them.

    Startable: returns the address and the children's pids once every child
    listens. Runs until cancelled, or raises ``ChildProcessError`` when a child
    exits (Rule 2).

    Raises:
        ConfigurationError: the platform has no ``SO_REUSEPORT``.
        OSError: a port cannot be reserved.
        ChildProcessError: a child exited (before or after it listened).
    """
    from runtime._cli.serve import TOKEN_ENV

    assert options.redis is not None
    env = {**environ, TOKEN_ENV: token, REDIS_URL_ENV: options.redis}
    host = options.host
    async with (
        _reserved(host, options.port) as page_port,
        _reserved(host, options.feed_port) as feed_port,
        trio.open_nursery() as nursery,
    ):
        pids = [0] * options.workers

        async def start(index: int) -> None:
            argv = child_argv(options, index, page_port, feed_port)
            pids[index] = await nursery.start(_child, index, argv, env)

        async with trio.open_nursery() as starting:
            for index in range(options.workers):
                starting.start_soon(start, index)
        shown = f"[{host}]" if ":" in host else host
        address = DashboardAddress(
            host=host, http_port=page_port, feed_port=feed_port, url=f"http://{shown}:{page_port}/"
        )
        task_status.started((address, tuple(pids)))
