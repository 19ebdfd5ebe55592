"""``bench/bench_scale_out.py`` still runs (tiny N), so its figures never rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime._redis.server import RedisServerMissing, find_redis_server

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_bench_scale_out_runs() -> None:
    try:
        find_redis_server()
    except RedisServerMissing as exc:
        pytest.skip(f"needs a real Redis: {exc}")
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_scale_out.py"), "--sessions", "4",
         "--workers", "1,2", "--concurrency", "2", "--stream-events", "500",
         "--token-delay", "0.001", "--scale-sessions"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["mode"] for line in lines] == [
        "stream_write_and_follow", "in_process_pool", "redis_workers", "redis_workers",
    ]  # fmt: skip
    assert lines[0]["events"] == 512  # 16 batches of 32
    assert [line.get("workers") for line in lines[2:]] == [1, 2]
    assert [line["sessions"] for line in lines[1:]] == [4, 4, 8]  # --scale-sessions
    assert lines[2]["efficiency"] == 1.0
    assert lines[3]["efficiency"] > 0
    assert {line["token_delay"] for line in lines[1:]} == {0.001}
    assert all(line["failed"] == 0 and line["sessions_per_s"] > 0 for line in lines[1:])
