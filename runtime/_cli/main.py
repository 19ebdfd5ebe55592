"""The ``openrouter-trio`` command line: ``run``, ``emulator``, ``demo``, ``serve``,
``worker`` and ``runs``.

One job: turn a command line into one trio run of the public pieces (the
``OpenRouter`` client, the session pool, the emulator) and report it on a
terminal or in a log.

This module parses the arguments and dispatches; each command lives beside it
(``run.py``, ``emulator.py``, ``demo.py``, ``serve.py``, ``worker.py``,
``runs.py``), terminal output in ``render.py`` and the demo tools in ``tools.py``.
The rules below hold for all.

Rules
-----

Rule 1 (one run). :func:`main` parses the arguments and calls ``trio.run``
once; :func:`run_cli` is the same thing inside a trio run that already exists
(tests use it). Every task belongs to a nursery of that run. The live display
does not use rich's refresh thread: a trio task repaints it.

Rule 2 (exit codes). 0 on success; 1 for an expected failure, reported as one
line ``error: <Type>: <message>`` on stderr and never as a traceback (any
``AgentError``, and ``OSError`` such as a port already in use); 1 as well when
a demo session failed; 2 for a usage error (argparse); 130 after Ctrl-C, except
for ``emulator``, ``serve`` and ``worker``, where Ctrl-C is the normal way to stop
(0; ``serve`` also stops with 0 on SIGTERM). ``serve --workers`` exits 1 when one
of its child processes exits (a ``ChildProcessError`` naming it). An exception of
any other kind is a bug and keeps its traceback.

Rule 3 (streams). stdout carries the product: the answer transcript of
``run``, the banner of ``emulator``, the progress and summary of ``demo``.
stderr carries notices (which server is used) and errors.

Rule 4 (keys). ``OPENROUTER_API_KEY`` goes to the client and nowhere else: no
message of this module contains it. The only keys ever printed are the
embedded emulator's own loopback keys, by ``emulator``, because clients need
them to talk to it.

Rule 5 (no network by default). Without ``OPENROUTER_API_KEY`` (and without
``--base-url``) ``run`` starts the embedded emulator in the same trio run and
says so on stderr. ``demo`` always uses the embedded emulator, so ``make demo``
works offline on a fresh clone.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import os
import signal
from typing import TYPE_CHECKING, Final

import msgspec
import trio

from runtime._base.errors import AgentError
from runtime._base.groups import leaves
from runtime._cli.demo import DemoOptions, run_demo, summary_table
from runtime._cli.emulator import serve_emulator_command
from runtime._cli.redis_url import add_redis_argument
from runtime._cli.render import error_line, make_console, print_line
from runtime._cli.run import REMOTE_MODEL, run_command
from runtime._cli.runs import add_runs_parser, runs_command
from runtime._cli.tools import DEMO_MODEL, demo_tools
from runtime._cli.worker import add_worker_parser, worker_command

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TextIO

    from rich.console import Console

__all__ = ["build_parser", "main", "run_cli"]

_EXIT_ERROR: Final = 1
_EXIT_INTERRUPTED: Final = 130
_ENCODER: Final = msgspec.json.Encoder()


# --- argument parsing ----------------------------------------------------------------


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {minimum}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openrouter-trio`` (one sub-command per job)."""
    try:
        version = importlib.metadata.version("openrouter-trio")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        version = "unknown"
    parser = argparse.ArgumentParser(
        prog="openrouter-trio",
        description="OpenRouter's callModel agent API on trio: run agents, serve the "
        "local emulator, or watch many sessions at once.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="stream one agent answer to the terminal",
        description="Stream one agent answer: text as it arrives, reasoning dimmed, tool "
        "calls and results compactly, then a usage line. Uses OpenRouter when "
        "OPENROUTER_API_KEY is set, the embedded emulator otherwise.",
    )
    run.add_argument("prompt", help="what to ask")
    run.add_argument(
        "--model",
        help=f"model id (default: {REMOTE_MODEL} on OpenRouter, {DEMO_MODEL} on the emulator)",
    )
    run.add_argument(
        "--tools", action="store_true", help="offer the demo tools get_weather and scan_table"
    )
    run.add_argument(
        "--base-url", help="API root to use instead of OPENROUTER_BASE_URL / openrouter.ai"
    )
    run.add_argument(
        "--max-turns",
        type=_int_at_least(0),
        metavar="N",
        help="stop after N tool rounds, then ask for a final answer (default: 5)",
    )
    run.add_argument(
        "--retries",
        type=_int_at_least(0),
        default=2,
        metavar="N",
        help="retries of a failed connection or 5xx answer per request (default: 2)",
    )

    emulator = commands.add_parser(
        "emulator",
        help="serve the local OpenRouter emulator until Ctrl-C",
        description="Serve the OpenRouter emulator over HTTP on loopback until Ctrl-C.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    emulator.add_argument(
        "--port", type=_int_at_least(0), default=8080, help="port to bind; 0 picks one (8080)"
    )
    emulator.add_argument(
        "--key",
        metavar="KEY",
        help="the inference key to accept (default: $OPENROUTER_EMULATOR_KEY, else a new one)",
    )
    emulator.add_argument(
        "--management-key",
        metavar="KEY",
        help="the management key (default: $OPENROUTER_EMULATOR_MANAGEMENT_KEY, else a new one)",
    )

    demo = commands.add_parser(
        "demo",
        help="many agent sessions with tools on the embedded emulator, live",
        description="Run many agent sessions with a typed tool and a progress-reporting "
        "generator tool against the embedded emulator, with live progress and a summary.",
    )
    demo.add_argument("--sessions", type=_int_at_least(1), default=24, help="sessions (24)")
    demo.add_argument(
        "--concurrency", type=_int_at_least(1), default=8, help="sessions at a time (8)"
    )
    demo.add_argument(
        "--events-per-session",
        type=_int_at_least(1),
        default=20,
        metavar="N",
        help="progress events scan_table reports in each session (20)",
    )
    demo.add_argument(
        "--step-delay",
        type=_seconds,
        default=0.02,
        metavar="SECONDS",
        help="pause before each progress event; 0 runs flat out (0.02)",
    )
    demo.add_argument(
        "--fail-every",
        type=_int_at_least(0),
        default=0,
        metavar="N",
        help="make every Nth session fail mid-stream, to show isolation (0: none)",
    )
    demo.add_argument(
        "--json", action="store_true", help="print the summary as one JSON line, nothing else"
    )
    serve = commands.add_parser(
        "serve",
        help="demo sessions, the websocket feed and the dashboard page",
        description="Keep running agent sessions (on the embedded emulator, or OpenRouter "
        "when OPENROUTER_API_KEY is set) and serve the live dashboard and its websocket "
        "feed; prints the URL to open.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument(
        "--port", type=_int_at_least(0), default=8000, help="dashboard port; 0 picks one (8000)"
    )
    serve.add_argument(
        "--feed-port",
        type=_int_at_least(0),
        default=0,
        metavar="PORT",
        help="websocket feed port; 0 picks one (0)",
    )
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind both ports with SO_REUSEPORT so that several serve --redis processes "
        "share them (Linux spreads connections over them)",
    )
    serve.add_argument(
        "--token-file",
        metavar="PATH",
        help="a file holding the feed's token (default: $OPENROUTER_TRIO_FEED_TOKEN, else a "
        "random one, printed once); a token you give is never printed",
    )
    serve.add_argument(
        "--token",
        help="the feed's token on the command line (visible to other users in ps: prefer "
        "--token-file or $OPENROUTER_TRIO_FEED_TOKEN)",
    )
    serve.add_argument(
        "--sessions", type=_int_at_least(0), default=0, help="sessions in all; 0 never stops (0)"
    )
    serve.add_argument(
        "--concurrency", type=_int_at_least(1), default=4, help="sessions at a time (4)"
    )
    serve.add_argument(
        "--interval", type=_seconds, default=1.0, metavar="SECONDS", help="between starts (1)"
    )
    add_redis_argument(
        serve,
        required=False,
        help="serve every run in this Redis (run by workers) instead of local sessions; "
        "--sessions N then submits N demo sessions to the workers",
    )
    serve.add_argument(
        "--workers",
        type=_int_at_least(1),
        default=0,
        metavar="N",
        help="with --redis: serve the page and the feed from N child processes sharing "
        "--port and --feed-port (SO_REUSEPORT); a child that exits stops them all",
    )
    # Internal: a child of --workers stops when its stdin (a pipe from the parent) closes.
    serve.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    add_worker_parser(commands)
    add_runs_parser(commands)
    return parser


# --- entry points ----------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``openrouter-trio`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Starts one trio run. See the module docstring for the exit codes.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error: argparse said why
        return exc.code if isinstance(exc.code, int) else _EXIT_ERROR
    err = make_console(stderr, stderr=True)
    interrupted = False
    code = _EXIT_ERROR
    try:
        code = trio.run(functools.partial(_dispatch, args, make_console(stdout), err))
    except* KeyboardInterrupt:
        interrupted = True
    if interrupted:
        if args.command in ("emulator", "serve", "worker"):
            print_line(err, f"{args.command} stopped")
            return 0
        print_line(err, "interrupted")
        return _EXIT_INTERRUPTED
    return code


async def run_cli(
    argv: Sequence[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """:func:`main` inside a running trio program: parse, run, return the exit code.

    A checkpoint. Cancelling it cancels the command (``emulator`` runs until then).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        await trio.lowlevel.checkpoint()
        return exc.code if isinstance(exc.code, int) else _EXIT_ERROR
    return await _dispatch(args, make_console(stdout), make_console(stderr, stderr=True))


async def _dispatch(args: argparse.Namespace, out: Console, err: Console) -> int:
    try:
        if args.command == "run":
            return await run_command(args, out, err)
        if args.command == "emulator":
            await serve_emulator_command(
                args.host,
                args.port,
                console=out,
                inference_key=args.key or os.environ.get("OPENROUTER_EMULATOR_KEY") or None,
                management_key=args.management_key
                or os.environ.get("OPENROUTER_EMULATOR_MANAGEMENT_KEY")
                or None,
            )
            return 0  # pragma: no cover - serves until cancelled
        if args.command == "serve":
            await _serve_command(args, out, err)
            return 0  # SIGTERM (or the parent of --workers) stopped it
        if args.command == "worker":
            await worker_command(args, functools.partial(print_line, out))
            return 0  # pragma: no cover - runs until cancelled
        if args.command == "runs":
            return await runs_command(args, out, err)
        return await _demo_command(args, out)
    except (AgentError, OSError, BaseExceptionGroup) as exc:
        expected = _expected(exc)
        if expected is None:
            raise
        print_line(err, error_line(expected))
        return _EXIT_ERROR


def _expected(exc: BaseException) -> Exception | None:
    """The error to report in one line, or ``None`` if ``exc`` is a bug (Rule 2)."""
    if isinstance(exc, BaseExceptionGroup):
        found = leaves(exc)
        errors = [leaf for leaf in found if isinstance(leaf, AgentError | OSError)]
        return errors[0] if errors and len(errors) == len(found) else None
    if isinstance(exc, AgentError | OSError):
        return exc
    return None


# --- demo and serve ------------------------------------------------------------------


async def _demo_command(args: argparse.Namespace, out: Console) -> int:
    options = DemoOptions(
        sessions=args.sessions,
        concurrency=args.concurrency,
        events_per_session=args.events_per_session,
        step_delay=args.step_delay,
        fail_every=args.fail_every,
    )
    summary = await run_demo(options, console=out, quiet=args.json)
    if args.json:
        print_line(out, _ENCODER.encode(summary).decode())
    else:
        out.print(summary_table(summary))
    return 0 if summary.failed == 0 else _EXIT_ERROR


async def _serve_command(args: argparse.Namespace, out: Console, err: Console) -> None:
    """``serve``: run sessions and the dashboard until Ctrl-C or SIGTERM (or, for a
    child of ``--workers``, until its parent closes its stdin)."""
    from runtime._cli.serve import ServeOptions, serve_sessions

    options = ServeOptions(
        host=args.host,
        port=args.port,
        feed_port=args.feed_port,
        reuse_port=args.reuse_port,
        workers=args.workers,
        token=args.token,
        token_file=args.token_file,
        sessions=args.sessions,
        concurrency=args.concurrency,
        interval=args.interval,
        redis=args.redis,
    )
    async with trio.open_nursery() as nursery:
        # A child of --workers stops quietly: its parent reports for all.
        nursery.start_soon(_stop_on_sigterm, nursery.cancel_scope, None if args.supervised else err)
        if args.supervised:
            nursery.start_soon(_stop_when_stdin_closes, nursery.cancel_scope)
        served = await nursery.start(serve_sessions, options, demo_tools(20, 0.1))
        print_line(out, f"sessions on the {served.backend}")
        feed = f"websocket feed on port {served.address.feed_port}"
        if served.pids:
            pids = ", ".join(map(str, served.pids))
            feed += f", served by {len(served.pids)} processes (pids {pids})"
        print_line(out, feed)
        if served.open_url == served.address.url:  # the user's token: never printed
            print_line(out, f"open the dashboard: {served.open_url}#token=<your token>")
        else:
            print_line(out, f"open the dashboard: {served.open_url}")


async def _stop_on_sigterm(cancel_scope: trio.CancelScope, err: Console | None) -> None:
    """Stop ``serve`` gracefully on SIGTERM (what service managers send)."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            if err is not None:
                print_line(err, "serve stopped")
            cancel_scope.cancel()
            return


async def _stop_when_stdin_closes(cancel_scope: trio.CancelScope) -> None:
    """A child of ``serve --workers`` stops when its parent goes away (even SIGKILLed)."""
    async with trio.lowlevel.FdStream(os.dup(0)) as stdin:
        while await stdin.receive_some():
            pass
    cancel_scope.cancel()
