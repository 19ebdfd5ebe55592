"""Helpers for testing code built on openrouter-trio (like ``trio.testing``).

* :class:`FakeOpenRouter` — the emulator in-process: scripted turns, recorded
  requests, one ``handle()`` entry point for an in-process transport.
* Turn builders — :func:`text_turn`, :func:`tool_call_turn`,
  :func:`failed_turn`, :func:`incomplete_turn`, :func:`error_turn`.
* :func:`tool_outputs` — the tool outputs a recorded request sent back, in
  order (for approval and resume flows).
* :class:`MemoryRegistry` — a session registry over plain event logs, to serve the
  websocket feed (or test a dashboard) without a pool.
* :func:`open_feed_client` — a websocket client of the feed that closes its socket
  however the connection ends; :func:`send_command`, :func:`receive_frame` and
  :func:`receive_until` speak the feed's JSON frames.
* Raw streams — :func:`turn_events` (the events of a turn) and
  :func:`sse_bytes` (events to SSE bytes).

For a real HTTP server on loopback use :func:`runtime.emulator.open_emulator`.

Rule (public layer): imports the emulator, ``runtime._http`` (to plug the fake in as a
transport), ``runtime._run`` (event logs, for the registry) and the layers below it;
nothing of the client or the actors.
"""

from __future__ import annotations

from runtime._base.publish import publish as _publish
from runtime.emulator._core import RecordedRequest
from runtime.emulator._script import Fault, Script, ToolCall, Turn, TurnError, TurnUsage
from runtime.testing._fake import FakeOpenRouter, tool_outputs
from runtime.testing._feed import open_feed_client, receive_frame, receive_until, send_command
from runtime.testing._registry import MemoryRegistry
from runtime.testing._turns import (
    error_turn,
    failed_turn,
    incomplete_turn,
    sse_bytes,
    text_turn,
    tool_call_turn,
    turn_events,
)

__all__ = [
    "FakeOpenRouter",
    "Fault",
    "MemoryRegistry",
    "RecordedRequest",
    "Script",
    "ToolCall",
    "Turn",
    "TurnError",
    "TurnUsage",
    "error_turn",
    "failed_turn",
    "incomplete_turn",
    "open_feed_client",
    "receive_frame",
    "receive_until",
    "send_command",
    "sse_bytes",
    "text_turn",
    "tool_call_turn",
    "tool_outputs",
    "turn_events",
]

for _name in __all__:
    _publish(__name__, globals()[_name])
del _name
