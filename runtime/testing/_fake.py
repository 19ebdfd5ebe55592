"""``FakeOpenRouter``: the emulator core in-process, for unit tests without sockets.

The same :class:`~runtime.emulator.Emulator` that the loopback server runs,
with a fixed clock (deterministic ids and timestamps), no limit on the request
record, and a single entry point, :meth:`FakeOpenRouter.handle`, that an
in-process HTTP transport adapter calls. This module never imports httpx:
the adapter lives in the transport module, which owns that dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, final

from runtime.emulator._core import Emulator, RecordedRequest
from runtime.testing._turns import FAKE_EPOCH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from runtime._http.transport import HttpxTransport
    from runtime.emulator._http import EmulatorResponse
    from runtime.emulator._script import Script, Turn

__all__ = ["FakeOpenRouter", "tool_outputs"]

FAKE_BASE_URL: Final = "https://openrouter.fake/api/v1"


def _fixed_clock() -> float:
    return float(FAKE_EPOCH)


def tool_outputs(body: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The ``function_call_output`` items of a recorded request body, in order.

    Each as ``(call_id, output)``; handy to check what a resumed conversation
    sent back, and in which order::

        assert tool_outputs(fake.bodies()[-1]) == [("call_1", '"sent"')]
    """
    items = body.get("input")
    if not isinstance(items, list):
        return []
    return [
        (str(item.get("call_id")), item.get("output"))
        for item in items
        if isinstance(item, Mapping) and item.get("type") == "function_call_output"
    ]


@final
class FakeOpenRouter:
    """An in-process OpenRouter with scripted turns that records every request.

    Turns passed to the constructor (or :meth:`enqueue`) answer requests for
    any model that is neither built in (``emulator/echo``, …) nor a registered
    script, in order, one turn per model call, whichever endpoint is asked.

    Example::

        fake = FakeOpenRouter(
            tool_call_turn(("get_weather", {"city": "Paris"})),
            text_turn("It is sunny in Paris.", chunks=3),
        )
        response = await fake.handle("POST", "/api/v1/responses", headers, body)
        assert fake.bodies()[0]["model"] == "openai/gpt-4o"

    Args:
        *turns: the default queue's turns.
        scripts: more named scripts (a :class:`Script` or a list of turns each).
        clock: the wall clock (default: fixed at 2023-11-14T22:13:20Z).
        **options: passed on to :class:`Emulator` (``keepalive_before_first``,
            ``keepalive_every``, ``coalesce``, ``chunk_size``, ``credits``, …).
    """

    base_url: Final = FAKE_BASE_URL

    def __init__(
        self,
        *turns: Turn,
        scripts: Mapping[str, Script | Iterable[Turn]] | None = None,
        clock: Callable[[], float] = _fixed_clock,
        **options: Any,
    ) -> None:
        options.setdefault("seed", "fake-openrouter")
        options.setdefault("record_limit", None)
        self.emulator = Emulator(clock=clock, **options)
        self.emulator.enqueue(*turns)
        for name, script in (scripts or {}).items():
            self.emulator.add_script(name, script)

    @property
    def inference_key(self) -> str:
        """The inference key to send as ``Authorization: Bearer …``."""
        return self.emulator.inference_key

    @property
    def management_key(self) -> str:
        """The management key (for ``/keys``, ``/credits``, ``/activity``)."""
        return self.emulator.management_key

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (``authorization`` redacted)."""
        return self.emulator.requests

    def bodies(self, path: str = "/api/v1/responses") -> list[Any]:
        """The decoded JSON bodies of the requests made to ``path``, in order."""
        return [request.json for request in self.emulator.requests if request.path == path]

    def enqueue(self, *turns: Turn) -> None:
        """Append turns to the default queue."""
        self.emulator.enqueue(*turns)

    def add_script(self, name: str, script: Script | Iterable[Turn]) -> None:
        """Register a script under model name ``name`` (see :meth:`Emulator.add_script`)."""
        self.emulator.add_script(name, script)

    def pending_turns(self, name: str | None = None) -> int:
        """Turns not consumed yet (the default queue when ``name`` is ``None``)."""
        return self.emulator.pending_turns(name)

    def http_transport(self) -> HttpxTransport:
        """An ``httpx`` transport answering from this fake, for ``OpenRouter(http_transport=...)``.

        Example::

            fake = FakeOpenRouter(text_turn("hi"))
            async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
                ...
        """
        from runtime._http.inprocess import InProcessTransport

        return InProcessTransport(self.handle)

    async def handle(
        self,
        method: str,
        url_path: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes = b"",
    ) -> EmulatorResponse:
        """Answer one request in-process (see :meth:`Emulator.handle`).

        A checkpoint. ``url_path`` is a path with optional query
        (``/api/v1/responses``) or an absolute URL. A streamed body is an async
        iterator of chunks that raises ``trio.BrokenResourceError`` where a
        ``drop`` fault cuts the connection; the caller owns and closes it.
        """
        return await self.emulator.handle(method, url_path, headers, body)

    def __repr__(self) -> str:
        return (
            f"<FakeOpenRouter requests={len(self.emulator.requests)} "
            f"pending={self.emulator.pending_turns()}>"
        )
