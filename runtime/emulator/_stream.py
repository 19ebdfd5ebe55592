"""SSE framing and the streamed body: from a list of events to timed HTTP chunks.

A streamed answer is first laid out as a list of *steps*, synchronously and
deterministically: ``bytes`` frames (one SSE event or comment each),
:class:`Pause` (wait this long), :data:`DROP` (cut the connection) and
:data:`HANG` (never finish). :func:`frame_events` builds that list from the
renderer's events and the transport-level faults; :class:`StreamBody` plays it
back as an async iterator of chunks.

Chunking rules (what a client sees per ``receive``):

1. By default every frame is its own chunk, as real servers flush each event.
2. ``coalesce`` joins consecutive frames, so only pauses split the body.
3. ``chunk_size`` joins consecutive frames, then cuts them into pieces of
   exactly that many bytes: events split mid-line and mid-UTF-8 character.

Framing rules (wire protocol §2): ``data: <json>`` lines, each event followed
by a blank line; comment lines (``: ...``) as keep-alives before the first
event and every ``keepalive_every`` events; ``data: [DONE]`` at the end.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final, final

import msgspec
import trio

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from runtime.emulator._script import Fault

__all__ = [
    "DONE_FRAME",
    "DROP",
    "HANG",
    "MALFORMED_FRAME",
    "Pause",
    "StreamBody",
    "data_frame",
    "frame_events",
]

_ENCODER: Final = msgspec.json.Encoder()
DONE_FRAME: Final = b"data: [DONE]\n\n"
MALFORMED_FRAME: Final = b'data: {"type": "response.output_text.delta", "sequence_number": \n\n'


@final
class Pause:
    """A step: wait ``seconds`` (on trio's clock) before the next frame."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Pause({self.seconds!r})"


@final
class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


DROP: Final = _Marker("DROP")
"""A step: drop the connection here (the body iterator raises ``trio.BrokenResourceError``)."""
HANG: Final = _Marker("HANG")
"""A step: never finish the body (sleep until cancelled)."""

Step = bytes | Pause | _Marker


def data_frame(event: Any) -> bytes:
    """One SSE event carrying ``event`` as JSON."""
    return b"data: " + _ENCODER.encode(event) + b"\n\n"


def frame_events(
    events: Sequence[Any],
    fault: Fault,
    *,
    keepalive: bytes,
    keepalive_before: int,
    keepalive_every: int,
) -> list[Step]:
    """Lay out ``events`` as SSE steps, applying the transport-level faults.

    ``fault.slow`` pauses before each data event; ``drop_after``,
    ``malformed_after``, ``hang`` and ``no_done`` act at their positions
    (counted in data events). Semantic faults (``fail_after``,
    ``error_after``) were already applied by the renderer.
    """
    steps: list[Step] = [keepalive] * keepalive_before
    for index, event in enumerate(events):
        if index == fault.drop_after:
            steps.append(DROP)
            return steps
        if index == fault.malformed_after:
            steps.append(MALFORMED_FRAME)
        if keepalive_every and index and index % keepalive_every == 0:
            steps.append(keepalive)
        if fault.slow:
            steps.append(Pause(fault.slow))
        steps.append(data_frame(event))
    if fault.malformed_after is not None and fault.malformed_after >= len(events):
        steps.append(MALFORMED_FRAME)
    if fault.drop_after is not None:
        steps.append(DROP)
    elif fault.hang:
        steps.append(HANG)
    elif not fault.no_done:
        steps.append(DONE_FRAME)
    return steps


def _shape(steps: Iterable[Step], coalesce: bool, chunk_size: int | None) -> deque[Step]:
    """Apply the chunking rules of the module docstring to a list of steps."""
    if not coalesce and chunk_size is None:
        return deque(steps)
    shaped: deque[Step] = deque()
    run: list[bytes] = []

    def flush() -> None:
        if not run:
            return
        data = b"".join(run)
        run.clear()
        if chunk_size is None:
            shaped.append(data)
        else:
            shaped.extend(data[i : i + chunk_size] for i in range(0, len(data), chunk_size))

    for step in steps:
        if isinstance(step, bytes):
            run.append(step)
        else:
            flush()
            shaped.append(step)
    flush()
    return shaped


@final
class StreamBody:
    """An async iterator over the chunks of a streamed body.

    Every ``__anext__`` is a checkpoint. :class:`Pause` steps sleep on trio's
    clock (so tests can use ``autojump_clock``); a :data:`DROP` raises
    ``trio.BrokenResourceError``; a :data:`HANG` sleeps until cancelled.
    Nothing is shared: each response gets its own body, read once.
    """

    __slots__ = ("_steps",)

    def __init__(
        self, steps: Iterable[Step], *, coalesce: bool = False, chunk_size: int | None = None
    ) -> None:
        self._steps = _shape(steps, coalesce, chunk_size)

    def __aiter__(self) -> StreamBody:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        steps = self._steps
        while steps:
            step = steps.popleft()
            if isinstance(step, bytes):
                return step
            if isinstance(step, Pause):
                await trio.sleep(step.seconds)
            elif step is DROP:
                steps.clear()
                raise trio.BrokenResourceError("the emulator dropped the connection (fault)")
            else:
                await trio.sleep_forever()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Discard what is left of the body (a checkpoint)."""
        self._steps.clear()
        await trio.lowlevel.checkpoint()

    async def read_all(self) -> bytes:
        """Every remaining chunk joined (raises where the body would drop or hang)."""
        return b"".join([chunk async for chunk in self])

    def __repr__(self) -> str:
        return f"StreamBody(<{len(self._steps)} steps left>)"
