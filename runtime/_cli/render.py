"""Terminal output of the command line: consoles, plain lines, one-line errors, and
the transcript of ``run``.

Rule 3 and Rule 4 of :mod:`runtime._cli.main` hold here: what is printed goes
through :func:`print_line` as it is (no markup), and no message contains
``OPENROUTER_API_KEY``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec
from rich.console import Console
from rich.text import Text

from runtime._base.errors import AgentError, AuthenticationError, TransportError
from runtime._protocol.events import (
    OutputItemDone,
    OutputTextDelta,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    ToolPreliminaryResult,
    ToolResult,
    TurnEnd,
)
from runtime._protocol.wire import FunctionCallItem

if TYPE_CHECKING:
    from typing import TextIO

    from runtime._run.status import RunUsage

__all__ = ["Transcript", "clip", "error_line", "json_or_repr", "make_console", "print_line"]

_ENCODER: Final = msgspec.json.Encoder()
_HINTS: Final[tuple[tuple[type[AgentError], str], ...]] = (
    (AuthenticationError, " Check OPENROUTER_API_KEY."),
    (TransportError, " Check the base URL and the network."),
)


def make_console(file: TextIO | None, *, stderr: bool = False) -> Console:
    """A console on ``file``, or on the real stdout (stderr) when ``file`` is ``None``."""
    if file is None:
        return Console(stderr=stderr, highlight=False)
    return Console(file=file, highlight=False)


def print_line(console: Console, text: str | Text, style: str | None = None) -> None:
    """Print one line as it is: no markup, no highlighting, no wrapping."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def error_line(exc: Exception) -> str:
    """``error: <Type>: <message>`` on one line, with a hint for the usual causes (Rule 2)."""
    message = " ".join(str(exc).split()) or "no details"
    for kind, hint in _HINTS:
        if isinstance(exc, kind):
            message += hint
            break
    return f"error: {type(exc).__name__}: {message}"


class Transcript:
    """Renders one run's events as a compact transcript: text, reasoning, tool traffic.

    Text deltas are written as they arrive; reasoning is dimmed; each tool call,
    progress event and result gets one clipped line of its own.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._mode = ""  # what the open line holds: "", "text" or "reasoning"
        self._names: dict[str, str] = {}
        utf = console.encoding.lower().startswith("utf")
        self._call, self._progress, self._result, self._dot = (
            ("→", "⋯", "←", "·") if utf else ("->", "..", "<-", "|")
        )

    def feed(self, event: object) -> None:
        """Show one event of the run's full stream (others are ignored)."""
        if isinstance(event, OutputTextDelta):
            self._write(event.delta, "text", None)
        elif isinstance(event, ReasoningTextDelta | ReasoningSummaryTextDelta):
            self._write(event.delta, "reasoning", "dim italic")
        elif isinstance(event, OutputItemDone) and isinstance(event.item, FunctionCallItem):
            item = event.item
            self._names[item.call_id] = item.name
            self._note(f"{self._call} {item.name} {item.arguments}", "cyan")
        elif isinstance(event, ToolPreliminaryResult):
            name = self._names.get(event.tool_call_id, event.tool_call_id)
            self._note(f"  {self._progress} {name} {json_or_repr(event.result)}", "dim")
        elif isinstance(event, ToolResult):
            name = self._names.get(event.tool_call_id, event.tool_call_id)
            self._note(f"{self._result} {name} {json_or_repr(event.result)}", "green")
        elif isinstance(event, TurnEnd):
            self.end_line()

    def end_line(self) -> None:
        """End the line being written, if any."""
        if self._mode:
            self._console.print()
            self._mode = ""

    def usage_line(self, usage: RunUsage, seconds: float) -> str:
        """The closing line: model calls, tokens, cost and time."""
        dot = self._dot
        calls = usage.model_calls
        cost = "cost n/a" if usage.cost is None else f"${usage.cost:.6f}"
        return (
            f"{calls} model call{'s' if calls != 1 else ''} {dot} "
            f"{usage.total_tokens} tokens ({usage.input_tokens} in, {usage.output_tokens} out) "
            f"{dot} {cost} {dot} {seconds:.2f}s"
        )

    def _write(self, delta: str, mode: str, style: str | None) -> None:
        if not delta:
            return
        if self._mode != mode:
            self.end_line()
            self._mode = mode
        self._console.print(
            Text(delta, style=style or ""), end="", markup=False, highlight=False, soft_wrap=True
        )
        if delta.endswith("\n"):
            self._mode = ""

    def _note(self, text: str, style: str) -> None:
        self.end_line()
        print_line(self._console, clip(text, self._console.width), style=style)


def clip(text: str, width: int) -> str:
    width = max(20, width)
    return text if len(text) <= width else text[: width - 3] + "..."


def json_or_repr(value: object) -> str:
    try:
        return _ENCODER.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)
