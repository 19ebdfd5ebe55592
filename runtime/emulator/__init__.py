"""A local OpenRouter emulator: a real HTTP server on loopback with scripted models.

It speaks OpenRouter's wire protocol (Responses streaming with keep-alive
comments and ``[DONE]``, chat and legacy completions, models, keys, credits,
activity, OAuth PKCE, error bodies) with deterministic built-in models
(``emulator/echo``, ``emulator/tool-caller``, ``emulator/reasoning``), scripted
models (:class:`Script` of :class:`Turn`) and fault injection (:class:`Fault`,
``model:fault=<spec>`` or the ``X-Emulator-Fault`` header).

Example::

    async with open_emulator() as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            response = await client.post(
                "/responses",
                headers={"Authorization": f"Bearer {server.inference_key}"},
                json={"model": "emulator/echo", "input": "hello"},
            )

For unit tests without sockets see :class:`runtime.testing.FakeOpenRouter`.

Rule (public layer): imports hypercorn, trio, msgspec and ``runtime._base`` /
``runtime._protocol`` only: the emulator is a server, and knows nothing of the client.
"""

from __future__ import annotations

from runtime._base.publish import publish as _publish
from runtime.emulator._accounts import key_hash, s256_challenge
from runtime.emulator._core import Emulator, EmulatorStatistics, RecordedRequest
from runtime.emulator._http import EmulatorResponse
from runtime.emulator._models import BUILTIN_MODELS, ModelCard, count_tokens, example_arguments
from runtime.emulator._script import (
    Fault,
    Pricing,
    Script,
    ToolCall,
    Turn,
    TurnError,
    TurnUsage,
    parse_fault,
)
from runtime.emulator._server import EmulatorApp, EmulatorServer, open_emulator, serve_emulator

__all__ = [
    "BUILTIN_MODELS",
    "Emulator",
    "EmulatorApp",
    "EmulatorResponse",
    "EmulatorServer",
    "EmulatorStatistics",
    "Fault",
    "ModelCard",
    "Pricing",
    "RecordedRequest",
    "Script",
    "ToolCall",
    "Turn",
    "TurnError",
    "TurnUsage",
    "count_tokens",
    "example_arguments",
    "key_hash",
    "open_emulator",
    "parse_fault",
    "s256_challenge",
    "serve_emulator",
]

for _name in __all__:
    _publish(__name__, globals()[_name])
del _name
