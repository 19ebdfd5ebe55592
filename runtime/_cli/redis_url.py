"""The ``--redis URL`` option of ``serve``, ``worker`` and ``runs``, and its variable.

Rule (secrets stay off command lines). A Redis URL may carry a password
(``redis://:secret@host/0``), and a command line is visible to every user of the
machine (``ps``). So each command also reads the URL from
``OPENROUTER_TRIO_REDIS_URL``, and a process this project starts (``serve
--workers``) gets it there, never in its argv.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

__all__ = ["REDIS_URL_ENV", "add_redis_argument"]

REDIS_URL_ENV: Final = "OPENROUTER_TRIO_REDIS_URL"
"""The environment variable every Redis command reads its URL from, when ``--redis``
is not given."""


def add_redis_argument(
    parser: argparse.ArgumentParser,
    *,
    required: bool,
    help: str,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Add ``--redis URL``, defaulting to ``$OPENROUTER_TRIO_REDIS_URL``."""
    environ = os.environ if environ is None else environ
    default = environ.get(REDIS_URL_ENV) or None
    parser.add_argument(
        "--redis",
        metavar="URL",
        default=default,
        required=required and default is None,
        help=f"{help} (default: ${REDIS_URL_ENV})",
    )
