"""Helpers for testing code built on openrouter-trio (like ``trio.testing``)."""

from __future__ import annotations

__all__: list[str] = []
