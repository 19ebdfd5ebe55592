"""``client.models``: the model catalogue of ``GET /models``, page by page.

The one job of this module: turn model filters into query parameters (checked
before any I/O) and walk the pages of ``GET /models`` on the client's
transport, one request per page.

Pagination rules (wire-protocol §6, spec §1f):

1. Without ``offset`` and ``limit`` the server sends the whole list as one page.
2. A page that carries ``links`` decides: the query of ``links.next`` is the
   next request, ``null`` ends the walk. A ``links.next`` whose offset does not
   move forward is the server's fault (``RemoteProtocolError``), reported after
   the page that carried it.
3. A page without ``links`` (an older server) is paged the SDK's way: while a
   page is full (``len(data) == limit``, limit 500 unless given) and
   ``total_count`` does not say it was the last, ask again with
   ``offset += len(data)``.
4. An empty page after the first ends the walk without being yielded.
5. Nothing is held open between pages: abandoning a pager needs no cleanup.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any, Final, Self, final

import msgspec

from runtime._base.errors import ConfigurationError, RemoteProtocolError
from runtime._rest.checks import (
    bool_text,
    check_choice,
    check_csv,
    check_int,
    check_number,
    check_str,
    decode_body,
)
from runtime._rest.types import Model, ModelsPage

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping

    from runtime._http.transport import ApiTransport

__all__ = ["Models", "ModelsPager"]

_MODELS_DEFAULT_LIMIT: Final = 500
_MODELS_MAX_LIMIT: Final = 1000
_MODELS_PAGE: Final = msgspec.json.Decoder(ModelsPage)


def _text(name: str, value: object) -> str:
    return check_str(name, value)


def _flag(name: str, value: object) -> str:
    if isinstance(value, bool):
        return bool_text(value)
    return check_choice(name, value, ("true", "false"))


def _number_at_least_zero(name: str, value: object) -> str:
    return _number_text(check_number(name, value, minimum=0))


def _fraction(name: str, value: object) -> str:
    return _number_text(check_number(name, value, minimum=0, maximum=1))


def _count(name: str, value: object) -> str:
    return str(check_int(name, value, minimum=0))


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_MODEL_FILTERS: Final[dict[str, Any]] = {
    "category": _text,
    "supported_parameters": check_csv,
    "output_modalities": check_csv,
    "input_modalities": check_csv,
    "sort": _text,
    "q": _text,
    "context": lambda name, value: str(check_int(name, value, minimum=1)),
    "min_price": _number_at_least_zero,
    "max_price": _number_at_least_zero,
    "min_output_price": _number_at_least_zero,
    "max_output_price": _number_at_least_zero,
    "arch": _text,
    "model_authors": check_csv,
    "providers": check_csv,
    "distillable": _flag,
    "zdr": lambda name, value: "true" if value is True else check_choice(name, value, ("true",)),
    "region": lambda name, value: check_choice(name, value, ("eu", "us")),
    "min_age_days": _count,
    "max_age_days": _count,
    "min_intelligence_index": _number_at_least_zero,
    "max_intelligence_index": _number_at_least_zero,
    "min_coding_index": _number_at_least_zero,
    "max_coding_index": _number_at_least_zero,
    "min_agentic_index": _number_at_least_zero,
    "max_agentic_index": _number_at_least_zero,
    "min_tool_success_rate": _fraction,
    "max_tool_success_rate": _fraction,
    "offset": _count,
    "limit": lambda name, value: str(check_int(name, value, minimum=1, maximum=_MODELS_MAX_LIMIT)),
}


def _model_params(filters: Mapping[str, object]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in filters.items():
        check = _MODEL_FILTERS.get(name)
        if check is None:
            known = ", ".join(sorted(_MODEL_FILTERS))
            raise ConfigurationError(f"Models.list got an unknown filter {name!r}; known: {known}")
        if value is not None:
            params[name] = check(name, value)
    return params


@final
class ModelsPager:
    """An async iterator over the pages of ``GET /models``; made by :meth:`Models.list`.

    Each step is one request (a checkpoint). When a page has ``links``, its
    ``links.next`` decides: the query of that link is the next request, and
    ``null`` means this was the last page. A page without ``links`` (an older
    server) follows the SDK's rule (spec §1f): while a page is full
    (``len(data) == limit``, limit 500 unless given) and ``total_count`` does
    not say it was the last, the request is repeated with
    ``offset += len(data)``. Without ``offset`` and ``limit`` the server sends
    the whole list as one page. An empty page after the first ends the
    iteration without being yielded.

    Nothing is held open between pages, so abandoning the iterator is fine.

    Raises (from ``__anext__``):
        RemoteProtocolError: a page does not decode, or ``links.next`` does not
            move forward.
        APIStatusError, TransportError: as for any request.
    """

    __slots__ = ("_done", "_error", "_fetched", "_params", "_transport")

    def __init__(self, transport: ApiTransport, params: dict[str, str]) -> None:
        self._transport = transport
        self._params = params
        self._done = False
        self._fetched = 0
        self._error: RemoteProtocolError | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ModelsPage:
        if self._error is not None:
            # A broken links.next is reported after the page that carried it.
            error, self._error = self._error, None
            self._done = True
            raise error
        if self._done:
            raise StopAsyncIteration
        params = self._params
        response = await self._transport.request("GET", "/models", params=params or None)
        page = decode_body(_MODELS_PAGE, response.body, "a page of models")
        first = self._fetched == 0
        self._fetched += 1
        try:
            following = self._next_params(page)
        except RemoteProtocolError as exc:
            self._error = exc
        else:
            if following is None:
                self._done = True
            else:
                self._params = following
        if not page.data and not first:
            self._done = True
            raise StopAsyncIteration
        return page

    def _next_params(self, page: ModelsPage) -> dict[str, str] | None:
        params = self._params
        if page.links is not None:
            # The server spoke about pagination: its links.next is authoritative.
            link = page.links.next
            if not link:
                return None
            following = dict(params)
            following.update(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
            if _offset(following) <= _offset(params):
                raise RemoteProtocolError(
                    f"The models page's links.next does not move forward: {link!r}"
                )
            return following
        # An older server without links: the SDK's rule (§1f).
        if "offset" not in params and "limit" not in params:
            return None  # the whole list came as one page
        limit = int(params.get("limit", _MODELS_DEFAULT_LIMIT))
        count = len(page.data)
        offset = _offset(params)
        if count == 0 or count < limit:
            return None
        if page.total_count is not None and offset + count >= page.total_count:
            return None
        return {**params, "offset": str(offset + count)}


def _offset(params: Mapping[str, str]) -> int:
    try:
        return int(params.get("offset", "0"))
    except ValueError:
        return 0


@final
class Models:
    """``client.models``: the model catalogue (``GET /models``).

    Args:
        transport: the client's transport.
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    def list(self, **filters: object) -> ModelsPager:
        """Iterate over pages of models matching ``filters`` (no I/O until iterated).

        Filters (wire-protocol §6; ``None`` means not given): ``offset``,
        ``limit`` (1-1000), ``category``, ``supported_parameters``,
        ``input_modalities``, ``output_modalities``, ``model_authors``,
        ``providers`` (a comma-separated string or a sequence), ``sort``,
        ``q``, ``context``, ``arch``, ``distillable`` (bool), ``zdr``
        (``True``), ``region`` (``"eu"``/``"us"``), price bounds
        ``min_price``/``max_price``/``min_output_price``/``max_output_price``
        (USD per million tokens), ``min_age_days``/``max_age_days``, index
        bounds ``min|max_intelligence_index``, ``min|max_coding_index``,
        ``min|max_agentic_index``, ``min|max_tool_success_rate`` (0-1).
        Without ``offset`` and ``limit`` the server returns the full list as
        one page. Note that ``output_modalities`` defaults to text on the server.

        Returns:
            A :class:`ModelsPager`; ``async for page in ...`` yields
            :class:`ModelsPage` objects.

        Raises:
            ConfigurationError: an unknown filter or a bad value (at once).

        Example::

            async for page in client.models.list(supported_parameters=["tools"], limit=100):
                for model in page.data:
                    print(model.id, model.pricing.prompt * 1_000_000)
        """
        return ModelsPager(self._transport, _model_params(filters))

    async def list_all(self, **filters: object) -> builtins.list[Model]:
        """Every model matching ``filters``, across all pages (see :meth:`list`).

        Always a checkpoint. Raises what :meth:`list` and its pages raise.

        Example::

            models = await client.models.list_all(q="gpt")
        """
        pager = self.list(**filters)
        models: builtins.list[Model] = []
        async for page in pager:
            models.extend(page.data)
        return models
