"""The supervised trio tasks of openrouter-trio: model call, tool call, session, feed."""

from __future__ import annotations

__all__: list[str] = []
