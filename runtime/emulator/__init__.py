"""A local OpenRouter emulator: a real HTTP server on loopback with scripted models."""

from __future__ import annotations

__all__: list[str] = []
