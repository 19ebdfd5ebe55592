"""Exception groups at our public boundaries: unwrap a lone exception, list the leaves.

Our public context managers (``OpenRouter``, ``ModelResult``, ``open_emulator``)
own nurseries whose tasks never raise on their own (a run records its failure
instead), so a group escaping them holds the body's own exception; users should
see that exception, not a group around it (trio-websocket's ``open_websocket``
does the same). A group of several is left alone. Stdlib only.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["leaves", "unwrap_lone_exception"]


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """Every non-group exception inside ``group``, depth first."""
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(leaves(exc))
        else:
            out.append(exc)
    return out


@contextlib.contextmanager
def unwrap_lone_exception() -> Iterator[None]:
    """Re-raise the only exception of an escaping group as itself (keeping its cause)."""
    try:
        yield
    except BaseExceptionGroup as group:
        found = leaves(group)
        if len(found) == 1:
            lone = found[0]
            raise lone from lone.__cause__
        raise
