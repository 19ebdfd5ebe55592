"""``python -m runtime``: the ``openrouter-trio`` command line (see ``runtime._cli.main``)."""

from __future__ import annotations

from runtime._cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
