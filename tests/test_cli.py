"""The ``openrouter-trio`` command line (``runtime/_cli/``, ``runtime/__main__.py``).

Rules of this module:

* In-process tests run the CLI inside the test's own trio run (``run_cli``,
  ``run_demo``, ``serve_emulator_command``) against a real emulator on
  127.0.0.1, each bounded by ``trio.fail_after``. Nothing leaves loopback.
* Two tests run the real program as a subprocess (``python -m runtime``), bounded
  by a subprocess timeout or ``trio.fail_after``.
* ``OPENROUTER_*`` variables are removed for every test (an autouse fixture), so
  a developer's real key can never be used or printed; tests that need a key set
  a fake one.
* Demo runs use ``--step-delay 0`` unless the subprocess test checks the defaults:
  the generator tool then never sleeps, so nothing waits on the real clock.
"""

from __future__ import annotations

import functools
import io
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import msgspec
import pytest
import trio
from rich.console import Console

from runtime._cli.demo import DemoOptions, DemoSummary, run_demo
from runtime._cli.emulator import serve_emulator_command
from runtime._cli.main import main, run_cli
from runtime.emulator._server import open_emulator

REPO = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
_CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _no_openrouter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OPENROUTER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "80")  # rich reads the width of a non-terminal from it


def _table_value(output: str, row: str) -> str:
    """The value cell of one row of the demo summary table."""
    match = re.search(rf"^\W*{re.escape(row)}\W+(\S+)", output, re.MULTILINE)
    assert match is not None, f"no {row!r} row in:\n{output}"
    return match.group(1)


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env.pop("FORCE_COLOR", None)
    env["COLUMNS"] = "80"
    return env


class _Terminal(io.StringIO):
    """A text buffer that says it is a terminal, so rich styles what it writes."""

    def isatty(self) -> bool:
        return True


# --- demo -------------------------------------------------------------------------------


async def test_demo_summary_is_consistent() -> None:
    out = io.StringIO()
    options = DemoOptions(sessions=5, concurrency=2, events_per_session=3, step_delay=0)
    with trio.fail_after(60):
        summary = await run_demo(options, console=Console(file=out, width=80))
    assert (summary.sessions, summary.ok, summary.failed) == (5, 5, 0)
    # emulator/tool-caller: one call to each of the two tools, then the answer.
    assert summary.turns == 10
    assert summary.tool_calls == 10
    assert summary.progress_events == 15
    assert summary.total_tokens == summary.input_tokens + summary.output_tokens > 0
    assert summary.cost > 0
    assert summary.events > summary.turns + summary.tool_calls + summary.progress_events
    assert summary.events_per_second == pytest.approx(summary.events / summary.wall_time)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("embedded emulator at http://127.0.0.1:")
    finished = sorted(line for line in lines if re.match(r"s\d ok ", line))
    assert [line[:2] for line in finished] == ["s1", "s2", "s3", "s4", "s5"]
    assert all("turns 2  tool calls 2  progress 3" in line for line in finished)


async def test_demo_figures_are_deterministic() -> None:
    options = DemoOptions(sessions=4, concurrency=4, events_per_session=2, step_delay=0)
    with trio.fail_after(60):
        first = await run_demo(options, console=Console(file=io.StringIO()), quiet=True)
        second = await run_demo(options, console=Console(file=io.StringIO()), quiet=True)
    timing = {"wall_time", "events_per_second"}
    assert {k: v for k, v in msgspec.structs.asdict(first).items() if k not in timing} == {
        k: v for k, v in msgspec.structs.asdict(second).items() if k not in timing
    }


async def test_demo_failing_sessions_leave_the_others_alone() -> None:
    out = io.StringIO()
    options = DemoOptions(
        sessions=4, concurrency=4, events_per_session=2, step_delay=0, fail_every=2
    )
    with trio.fail_after(60):
        summary = await run_demo(options, console=Console(file=out, width=80))
    assert (summary.ok, summary.failed) == (2, 2)
    assert summary.tool_calls == 4  # only the two healthy sessions reach their tools
    failed = sorted(line for line in out.getvalue().splitlines() if "FAILED" in line)
    assert [line.split()[0] for line in failed] == ["s2", "s4"]
    assert all("ResponseFailedError" in line for line in failed)


async def test_demo_live_view_fits_an_80_column_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    options = DemoOptions(
        sessions=3, concurrency=3, events_per_session=2, step_delay=0, fail_every=3
    )
    with trio.fail_after(60):
        summary = await run_demo(options, console=console)
    assert (summary.ok, summary.failed) == (2, 1)
    text = _CSI.sub("", out.getvalue())
    lines = text.replace("\r", "\n").splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(re.match(r"sessions\s+━+\s+3/3 ", line) for line in lines)
    assert any(line.startswith("s3 FAILED  ResponseFailedError") for line in lines)


async def test_demo_command_prints_the_summary_table() -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["demo", "--sessions", "3", "--concurrency", "2", "--step-delay", "0"]
    with trio.fail_after(60):
        code = await run_cli([*argv, "--events-per-session", "4"], stdout=out, stderr=err)
    output = out.getvalue()
    assert code == 0, err.getvalue()
    assert err.getvalue() == ""
    assert "demo summary" in output
    assert _table_value(output, "sessions") == "3"
    assert _table_value(output, "ok") == "3"
    assert _table_value(output, "failed") == "0"
    assert _table_value(output, "turns") == "6"
    assert _table_value(output, "tool calls") == "6"
    assert _table_value(output, "progress events") == "12"


async def test_demo_json_summary_and_exit_code_when_a_session_fails() -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["demo", "--sessions", "2", "--fail-every", "2", "--step-delay", "0", "--json"]
    with trio.fail_after(60):
        code = await run_cli(argv, stdout=out, stderr=err)
    assert code == 1
    (line,) = out.getvalue().splitlines()
    summary = msgspec.json.decode(line, type=DemoSummary)
    assert (summary.sessions, summary.ok, summary.failed) == (2, 1, 1)


def test_make_demo_command_runs_as_a_subprocess() -> None:
    """What ``make demo`` runs, as a real process with the default options but the count."""
    completed = subprocess.run(
        [sys.executable, "-m", "runtime", "demo", "--sessions", "3"],
        cwd=REPO,
        env=_subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    output = completed.stdout
    assert _table_value(output, "sessions") == "3"
    assert _table_value(output, "ok") == "3"
    assert _table_value(output, "failed") == "0"
    assert int(_table_value(output, "tool calls")) == 6
    assert int(_table_value(output, "progress events")) == 3 * 20
    assert int(_table_value(output, "events")) > 0
    assert len(re.findall(r"^s\d ok ", output, re.MULTILINE)) == 3


# --- run --------------------------------------------------------------------------------


async def test_run_without_a_key_uses_the_embedded_emulator() -> None:
    out, err = io.StringIO(), io.StringIO()
    with trio.fail_after(30):
        code = await run_cli(
            ["run", "hello there", "--model", "emulator/echo"], stdout=out, stderr=err
        )
    assert code == 0
    assert re.fullmatch(
        r"no OPENROUTER_API_KEY: using the embedded emulator at http://127\.0\.0\.1:\d+/api/v1\n",
        err.getvalue(),
    )
    answer, usage = out.getvalue().splitlines()
    assert answer == "hello there"
    assert re.match(r"1 model call · \d+ tokens \(\d+ in, \d+ out\) · \$0\.\d{6} · ", usage)


async def test_run_with_tools_shows_calls_progress_and_results() -> None:
    out, err = io.StringIO(), io.StringIO()
    with trio.fail_after(30):
        code = await run_cli(["run", "--tools", "What is the weather?"], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[:2] == [
        '→ get_weather {"city":"city","unit":"c"}',
        '→ scan_table {"table":"table"}',
    ]
    assert [line for line in lines if "⋯" in line] == [
        f'  ⋯ scan_table {{"done":{n},"total":3}}' for n in (1, 2, 3)
    ]
    assert '← scan_table {"table":"table","rows":3000}' in lines
    assert lines[-2].startswith('get_weather returned {"city":"city"')
    assert lines[-1].startswith("2 model calls · ")


async def test_run_dims_reasoning_before_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    out, err = _Terminal(), io.StringIO()
    with trio.fail_after(30):
        code = await run_cli(
            ["run", "--model", "emulator/reasoning", "think it over"], stdout=out, stderr=err
        )
    assert code == 0, err.getvalue()
    styled = out.getvalue()
    assert "\x1b[2;3m" in styled  # dim italic
    reasoning, answer = _CSI.sub("", styled).splitlines()[:2]
    assert reasoning.startswith("The user wrote 3 words.")
    assert answer == "think it over"


async def test_run_with_a_wrong_key_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    with trio.fail_after(30):
        async with open_emulator() as server:
            code = await run_cli(
                ["run", "hi", "--base-url", server.base_url], stdout=out, stderr=err
            )
    assert code == 1
    assert re.fullmatch(
        r"error: AuthenticationError: 401: .+ Check OPENROUTER_API_KEY\.\n", err.getvalue()
    )
    assert FAKE_KEY not in out.getvalue() + err.getvalue()


async def test_run_with_an_unreachable_base_url_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    base_url = f"http://127.0.0.1:{_free_port()}/api/v1"
    with trio.fail_after(30):
        code = await run_cli(
            ["run", "hi", "--base-url", base_url, "--retries", "0"], stdout=out, stderr=err
        )
    assert code == 1
    assert re.fullmatch(
        r"error: TransportError: .+ Check the base URL and the network\.\n", err.getvalue()
    )
    assert out.getvalue() == ""
    assert FAKE_KEY not in err.getvalue()


async def test_run_reports_an_unknown_model_without_a_traceback() -> None:
    out, err = io.StringIO(), io.StringIO()
    with trio.fail_after(30):
        code = await run_cli(["run", "hi", "--model", "no such model"], stdout=out, stderr=err)
    assert code == 1
    (line,) = err.getvalue().splitlines()[1:]  # after the emulator notice
    assert line.startswith("error: BadRequestError: 400: ")


# --- emulator ---------------------------------------------------------------------------


async def test_emulator_command_prints_what_clients_need(
    monkeypatch: pytest.MonkeyPatch, nursery: trio.Nursery
) -> None:
    banner = io.StringIO()
    with trio.fail_after(30):
        server = await nursery.start(
            functools.partial(serve_emulator_command, "127.0.0.1", 0, console=Console(file=banner))
        )
        text = banner.getvalue()
        assert f"listening on {server.url}" in text
        assert f"base URL        {server.base_url}" in text
        assert f"inference key   {server.inference_key}" in text
        assert f"management key  {server.management_key}" in text
        # What the banner says to do works: `run` with its base URL and key.
        monkeypatch.setenv("OPENROUTER_API_KEY", server.inference_key)
        out, err = io.StringIO(), io.StringIO()
        argv = ["run", "ping", "--base-url", server.base_url, "--model", "emulator/echo"]
        assert await run_cli(argv, stdout=out, stderr=err) == 0
        assert err.getvalue() == ""  # no emulator notice: a key was set
        assert out.getvalue().splitlines()[0] == "ping"
    nursery.cancel_scope.cancel()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX-only")
async def test_emulator_subprocess_stops_cleanly_on_ctrl_c() -> None:
    command = [sys.executable, "-m", "runtime", "emulator", "--port", "0"]
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            command, cwd=REPO, env=_subprocess_env(), stdout=subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            seen = b""
            while b"Press Ctrl-C" not in seen:
                chunk = await process.stdout.receive_some()
                assert chunk, f"the emulator exited early: {seen!r}"
                seen += chunk
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert re.search(rb"base URL +http://127\.0\.0\.1:\d+/api/v1", seen)


KNOWN_KEY = "sk-or-v1-emu-known-inference-0123456789"
KNOWN_MANAGEMENT_KEY = "sk-or-v1-emu-known-management-0123456789"


async def _banner_of(command: list[str], env: dict[str, str]) -> tuple[trio.Process, str]:
    process = await trio.lowlevel.open_process(command, cwd=REPO, env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    seen = b""
    while b"Press Ctrl-C" not in seen:
        chunk = await process.stdout.receive_some()
        assert chunk, f"the emulator exited early: {seen!r}"
        seen += chunk
    return process, seen.decode()


async def _stop(process: trio.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX-only")
async def test_the_banners_try_command_works_as_printed() -> None:
    """The "Try:" lines, pasted into a shell as they are, stream an answer with tool calls."""
    env = _subprocess_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [sys.executable, "-m", "runtime", "emulator", "--port", "0"]
    with trio.fail_after(90):
        process, banner = await _banner_of(command, env)
        try:
            lines = banner.splitlines()
            start = lines.index("Try:") + 1
            end = next(i for i, line in enumerate(lines) if line.startswith("Press Ctrl-C"))
            script = "\n".join(line.strip() for line in lines[start:end])
            assert "openrouter-trio run" in script
            done = await trio.run_process(
                ["bash", "-c", script],
                env=env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        finally:
            await _stop(process)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "get_weather" in out  # the tool-caller called the demo tool
    assert done.stderr.decode() == ""  # a key was set: no embedded-emulator notice


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX-only")
@pytest.mark.parametrize("how", ["flags", "env"])
async def test_the_emulator_keys_can_be_fixed(how: str) -> None:
    env = _subprocess_env()
    command = [sys.executable, "-m", "runtime", "emulator", "--port", "0"]
    if how == "flags":
        command += ["--key", KNOWN_KEY, "--management-key", KNOWN_MANAGEMENT_KEY]
    else:
        env["OPENROUTER_EMULATOR_KEY"] = KNOWN_KEY
        env["OPENROUTER_EMULATOR_MANAGEMENT_KEY"] = KNOWN_MANAGEMENT_KEY
    with trio.fail_after(60):
        process, banner = await _banner_of(command, env)
        try:
            url = re.search(r"base URL +(\S+)", banner)
            assert url is not None
            assert f"inference key   {KNOWN_KEY}" in banner
            assert f"management key  {KNOWN_MANAGEMENT_KEY}" in banner
            async with httpx.AsyncClient(base_url=url.group(1)) as http:
                inference = await http.get("/key", headers={"authorization": f"Bearer {KNOWN_KEY}"})
                management = await http.get(
                    "/keys", headers={"authorization": f"Bearer {KNOWN_MANAGEMENT_KEY}"}
                )
        finally:
            await _stop(process)
    assert inference.status_code == 200
    assert management.status_code == 200


def test_a_bad_emulator_key_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "0", "--key", "short"]) == 1
    err = capsys.readouterr().err
    assert "inference_key must be 8 to 256 visible ASCII characters" in err
    assert "short" not in err.replace("--key", "")


# --- argument parsing -------------------------------------------------------------------


def test_main_rejects_bad_arguments_with_usage_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--sessions", "0"]) == 2
    assert "argument --sessions: '0' is not a whole number >= 1" in capsys.readouterr().err
    assert main(["demo", "--step-delay", "-1"]) == 2
    assert "'-1' is not a number of seconds >= 0" in capsys.readouterr().err
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_main_prints_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert re.fullmatch(r"openrouter-trio \S+\n", capsys.readouterr().out)
