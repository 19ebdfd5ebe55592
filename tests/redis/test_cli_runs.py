"""``openrouter-trio runs``: submit, follow, list and cancel against a real redis-server.

A worker runs in the test's trio run (``run_worker``) on the loopback emulator;
the commands go through ``run_cli`` as a shell would call them.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest
import trio

from runtime._cli.main import run_cli
from runtime._cli.tools import demo_tools

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    RunningWorker = Callable[..., AbstractAsyncContextManager[None]]

    from runtime._redis.server import RedisServer
    from runtime._redis.store import RedisStore

MODEL = "emulator/tool-caller"


async def runs(redis: RedisServer, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_cli(["runs", "--redis", redis.url, *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


async def test_submit_then_follow_prints_every_event_once_and_list_shows_the_run(
    redis_server: RedisServer, running_worker: RunningWorker
) -> None:
    with trio.fail_after(60):
        async with running_worker(demo_tools(2, 0.0), "w"):
            code, out, err = await runs(
                redis_server, "submit", "--model", MODEL, "--input", "weather and rows?",
                "--tools", "get_weather,scan_table",
            )  # fmt: skip
            assert (code, err) == (0, "")
            run_id = out.strip()
            assert run_id.startswith("run_")
            code, out, err = await runs(redis_server, "follow", run_id, "--json")
            assert (code, err) == (0, "")
            lines = [json.loads(line) for line in out.splitlines()]
            assert [line["seq"] for line in lines] == list(range(len(lines)))
            types = [line["event"]["type"] for line in lines]
            assert types.count("turn.start") == 2
            assert types.count("tool.result") == 2
            # Resume after a seq: exactly the rest.
            code, out, _ = await runs(redis_server, "follow", run_id, "--json", "--after", "9")
            rest = [json.loads(line) for line in out.splitlines()]
            assert rest == lines[10:]
            # The human transcript ends with the usage line of the final snapshot.
            code, out, _ = await runs(redis_server, "follow", run_id)
            assert code == 0
            assert "2 model calls" in out.splitlines()[-1]
            code, out, _ = await runs(redis_server, "list", "--json")
            (snap,) = [json.loads(line) for line in out.splitlines()]
            assert (snap["id"], snap["status"], snap["next_seq"]) == (run_id, "done", len(lines))
            code, out, _ = await runs(redis_server, "list")
            (row,) = [ln for ln in out.splitlines() if ln.startswith(run_id)]
            assert row.split()[1] == "done"


async def test_cancel_from_the_shell_ends_a_queued_run_cancelled(
    redis_server: RedisServer, redis_store: RedisStore, running_worker: RunningWorker
) -> None:
    with trio.fail_after(60):
        code, out, _ = await runs(redis_server, "submit", "--model", MODEL, "--input", "hi")
        run_id = out.strip()
        code, _, err = await runs(redis_server, "cancel", run_id)
        assert code == 0
        assert run_id in err
        async with running_worker([], "w"):
            code, out, err = await runs(redis_server, "follow", run_id, "--json")
            assert (code, out, err) == (0, "", "")  # ended cancelled before any event


async def test_a_failed_run_exits_1_naming_its_error(
    redis_server: RedisServer, redis_store: RedisStore, running_worker: RunningWorker
) -> None:
    with trio.fail_after(60):
        async with running_worker([], "w"):
            code, out, err = await runs(
                redis_server, "submit", "--model", MODEL, "--tools", "missing", "--follow"
            )
    assert code == 1
    assert out.startswith("run_")
    assert err.startswith("error: RemoteRunError:")
    assert "'missing'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "--model", MODEL, "--approve", "call_1"], "need --conversation"),
        (["submit", "--model", MODEL, "--conversation", "a b"], "'a b'"),
    ],
)
async def test_bad_submissions_are_one_line_errors(
    redis_server: RedisServer, argv: list[str], message: Any
) -> None:
    with trio.fail_after(30):
        code, out, err = await runs(redis_server, *argv)
    assert (code, out) == (1, "")
    assert err.startswith("error: ConfigurationError:")
    assert message in err


async def test_the_redis_url_may_come_from_the_environment_instead_of_argv(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.delenv("OPENROUTER_TRIO_REDIS_URL", raising=False)
    assert await run_cli(["runs", "list"], stdout=out, stderr=err) == 2  # required
    monkeypatch.setenv("OPENROUTER_TRIO_REDIS_URL", redis_server.url)
    with trio.fail_after(30):
        code = await run_cli(
            ["runs", "submit", "--model", MODEL, "--input", "hi"], stdout=out, stderr=err
        )
        assert code == 0
        run_id = out.getvalue().strip()
        listed = io.StringIO()
        assert await run_cli(["runs", "list", "--json"], stdout=listed, stderr=err) == 0
    assert json.loads(listed.getvalue())["id"] == run_id
