"""Make a facade's classes and functions report the public namespace (as trio's do).

Used by the facades (``runtime``, ``runtime.testing``, ``runtime.emulator``) so
that reprs and tracebacks read ``runtime.OpenRouter``, not
``runtime._client.client.OpenRouter``. msgspec Structs are left alone: msgspec resolves
their postponed annotations in ``sys.modules[cls.__module__]``, so renaming
their module would break decoding.
"""

from __future__ import annotations

import msgspec

__all__ = ["publish"]


def publish(facade: str, value: object) -> None:
    """Set ``value.__module__`` to ``facade`` if it is a class or function of a private module."""
    module = getattr(value, "__module__", "") or ""
    if not module.startswith(("runtime.", "actors.")) or "._" not in module:
        return
    if isinstance(value, type) and issubclass(value, msgspec.Struct):
        return
    if isinstance(value, type) or callable(value):
        try:
            value.__module__ = facade
        except (AttributeError, TypeError):  # pragma: no cover - builtins-like objects
            pass
