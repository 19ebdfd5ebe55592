"""``openrouter-trio runs``: queue, list, follow and cancel durable runs from a shell.

The operator's side of the scale-out (``docs/guides/scale-out.md``): the same
calls a program makes (``submit_run``, ``open_run_reader``, ``cancel_run``,
the registry hash), one command each, against any Redis the workers use.

Rules
-----

Rule 1 (what goes where). stdout carries the product: the run id ``submit``
queued, the table or JSON lines of ``list``, the transcript or JSON lines of
``follow``. Nothing else is printed there, so ``id=$(openrouter-trio runs ...
submit ...)`` works.

Rule 2 (exit codes, as ``runs follow`` ends). 0 when the run ended ``done`` or
``cancelled``; 1 when it failed (one ``error:`` line on stderr naming the
original error's type and message), as every other expected failure.

Rule 3 (JSON lines). ``--json`` prints one object per line: for ``list`` a run's
snapshot; for ``follow`` ``{"seq": n, "event": {...}}`` with the event as the
websocket feed and the REST stream encode it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import msgspec
import trio

from runtime._base.errors import ConfigurationError
from runtime._cli.redis_url import add_redis_argument
from runtime._cli.render import Transcript, print_line
from runtime._redis.store import open_redis_store, open_run_reader
from runtime._redis.work import cancel_run, load_snapshot, load_snapshots, submit_run
from runtime._run.status import FINISHED, RunSnapshot

if TYPE_CHECKING:
    import argparse

    from rich.console import Console

    from runtime._redis.store import RedisStore

__all__ = ["add_runs_parser", "runs_command"]

_ENCODER: Final = msgspec.json.Encoder()


def add_runs_parser(commands: Any) -> None:
    """The ``runs`` sub-command and its four actions."""
    runs = commands.add_parser(
        "runs",
        help="queue, list, follow and cancel durable runs in Redis (scale-out)",
        description="Work with the runs of a Redis deployment (see 'worker').",
    )
    add_redis_argument(runs, required=True, help="redis://host:port/db")
    runs.add_argument("--prefix", default="ort", help="key prefix of the deployment (ort)")
    actions = runs.add_subparsers(dest="action", required=True, metavar="ACTION")

    submit = actions.add_parser("submit", help="queue a run; prints its id")
    submit.add_argument("--model", required=True)
    submit.add_argument("--input", help="the user's message")
    submit.add_argument("--instructions")
    submit.add_argument("--tools", default="", help="comma-separated names of the workers' tools")
    submit.add_argument("--conversation", metavar="ID", help="continue this conversation")
    submit.add_argument("--require-approval", action="store_true", help="ask before any tool")
    submit.add_argument("--approve", action="append", default=[], metavar="CALL_ID")
    submit.add_argument("--reject", action="append", default=[], metavar="CALL_ID")
    submit.add_argument("--follow", action="store_true", help="then follow it (as 'follow')")
    submit.add_argument("--json", action="store_true", help="with --follow: JSON lines")

    listing = actions.add_parser("list", help="every run the workers published")
    listing.add_argument("--json", action="store_true", help="one snapshot per line")

    follow = actions.add_parser("follow", help="print a run's events, live, until it ends")
    follow.add_argument("run_id")
    follow.add_argument(
        "--after", type=int, default=-1, metavar="SEQ", help="start after this seq (-1)"
    )
    follow.add_argument("--json", action="store_true", help="one event per line")

    cancel = actions.add_parser("cancel", help="cancel a run wherever it runs")
    cancel.add_argument("run_id")


async def runs_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run one ``runs`` action; the exit code (Rule 2)."""
    async with open_redis_store(args.redis, prefix=args.prefix) as store:
        if args.action == "submit":
            run_id = await _submit(store, args)
            print_line(out, run_id)
            if not args.follow:
                return 0
            return await _follow(store, run_id, -1, json=args.json, out=out)
        if args.action == "list":
            await _list(store, json=args.json, out=out)
            return 0
        if args.action == "follow":
            return await _follow(store, args.run_id, args.after, json=args.json, out=out)
        await cancel_run(store, args.run_id)
        print_line(err, f"cancel requested for {args.run_id}")
        return 0


async def _submit(store: RedisStore, args: argparse.Namespace) -> str:
    request: dict[str, Any] = {"model": args.model}
    for name in ("input", "instructions"):
        if getattr(args, name) is not None:
            request[name] = getattr(args, name)
    if args.require_approval:
        request["require_approval"] = True
    if args.approve:
        request["approve"] = list(args.approve)
    if args.reject:
        request["reject"] = list(args.reject)
    if (args.approve or args.reject) and args.conversation is None:
        raise ConfigurationError("--approve and --reject need --conversation (the paused one).")
    tools = [name.strip() for name in args.tools.split(",") if name.strip()]
    return await submit_run(store, tools=tools, conversation=args.conversation, **request)


async def _list(store: RedisStore, *, json: bool, out: Console) -> None:
    snapshots = sorted(await load_snapshots(store), key=lambda s: s.id)
    if json:
        for snap in snapshots:
            print_line(out, _ENCODER.encode(snap).decode())
        return
    print_line(out, f"{'run':<22} {'status':<10} {'turn':>4} {'tools':>5} {'events':>6}  model")
    for snap in snapshots:
        status: str = snap.status
        if snap.conversation_status not in (None, "complete", "in_progress"):
            status = f"{status} ({snap.conversation_status})"
        print_line(
            out,
            f"{snap.id:<22} {status:<10} {snap.turn:>4} {snap.tool_calls_executed:>5} "
            f"{snap.next_seq:>6}  {snap.model or '-'}",
        )


async def _follow(store: RedisStore, run_id: str, after: int, *, json: bool, out: Console) -> int:
    started = time.perf_counter()
    transcript = None if json else Transcript(out)
    async with open_run_reader(store, run_id, after=after) as cursor:
        async for event in cursor:
            if transcript is not None:
                transcript.feed(event)
            else:
                line = {"seq": cursor.seq - 1, "event": event}  # seq: the next one
                print_line(out, _ENCODER.encode(line).decode())
    if transcript is not None:
        transcript.end_line()
        snap = await _final_snapshot(store, run_id)
        if snap is not None:
            print_line(out, transcript.usage_line(snap.usage, time.perf_counter() - started))
    return 0


async def _final_snapshot(store: RedisStore, run_id: str) -> RunSnapshot | None:
    """The run's snapshot once its worker published the final one (at most 2 s after
    its end entry, else the latest); ``None`` for a run nobody published."""
    keys = store.keys
    tail = await store.client.xrevrange(keys.registry, count=1)
    last = tail[0].identifier if tail else b"0-0"
    with trio.move_on_after(2):
        while True:
            snap = await load_snapshot(store, run_id)
            if snap is None or snap.status in FINISHED:
                return snap
            reply = await store.client.xread({keys.registry: last}, count=64, block=500)
            for entry in next(iter(reply.values())) if reply else ():
                last = entry.identifier
    return await load_snapshot(store, run_id)
