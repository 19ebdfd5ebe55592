"""How runs are laid out in Redis: key names, stream entry ids, and event encoding (sans-io).

One run's events are one stream. The entry of event ``seq`` has the explicit id
``0-<seq + 1>`` (Redis forbids ``0-0``), so an id *is* a seq: ``XREAD`` from
``0-<after + 1>`` returns exactly the events after ``after``, a gap between two
ids is exactly the number of events the stream's trimming dropped, and a second
writer of the same seq is refused by Redis (ids only grow), which fences a
worker that lost its run to another one.

Entry fields (bytes):

========= ============================================================
``e``     a server event, as the JSON the API sent (re-encoded)
``r``     a run event (``turn.start``, ``tool.result``, ...), as JSON
``u``     an event of a type this version did not know: its raw JSON
``end``   the terminal entry: ``done``, ``failed`` or ``cancelled``;
          with ``err``: ``{"type": ..., "message": ...}`` when failed
========= ============================================================

The terminal entry takes the id after the last event; nothing follows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, get_args

import msgspec

from runtime._base.errors import ConfigurationError, RemoteProtocolError, RunError
from runtime._protocol.events import RunEvent, UnknownEvent, decode_event

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "DEFAULT_PREFIX",
    "END_STATUSES",
    "RemoteRunError",
    "RunEnd",
    "Keys",
    "decode_entry",
    "encode_end",
    "encode_events",
    "entry_id",
    "seq_of",
]

DEFAULT_PREFIX: Final = "ort"
"""The prefix of every key this package writes (``ort:run:<id>:events``, ...)."""

END_STATUSES: Final = frozenset({"done", "failed", "cancelled"})

_ENCODER: Final = msgspec.json.Encoder()
_RUN_DECODER: Final = msgspec.json.Decoder(RunEvent)
_RUN_TYPES: Final = tuple(get_args(RunEvent))


class _ErrorInfo(msgspec.Struct, frozen=True):
    type: str
    message: str


_ERROR_DECODER: Final = msgspec.json.Decoder(_ErrorInfo)


class RemoteRunError(RunError):
    """A run followed from Redis failed in the process that ran it.

    The original exception stayed in that process; this one carries its type
    name and message. Attributes: ``error_type``, ``error_message``.
    """

    def __init__(self, error_type: str, error_message: str) -> None:
        super().__init__(f"the run failed in another process: {error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message


class RunEnd(msgspec.Struct, frozen=True):
    """The terminal entry of a run's stream: how the run ended."""

    status: str
    error: RemoteRunError | None = None


class Keys:
    """The key names under one prefix (``ort`` by default).

    Keys of one run share the hash tag ``{<run id>}``, and the deployment-wide
    keys (the queue, the registry, the cancel stream, the expiry index) share
    the hash tag ``{<prefix>}``: on Redis Cluster each group lives on one shard,
    so a transaction or a script over one group stays on one node. The runs'
    streams, the bulk of the data, spread over the shards by run id.
    """

    __slots__ = ("cancels", "finished", "group", "prefix", "registry", "runs", "sessions")

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "{} \n"):
            raise ConfigurationError(
                f"prefix must be a non-empty string without braces or spaces, got {prefix!r}."
            )
        self.prefix = prefix
        shared = f"{{{prefix}}}"
        self.sessions = f"{shared}:sessions"  # the work queue (a stream)
        self.group = "workers"  # its consumer group
        self.registry = f"{shared}:registry"  # registry updates (a stream)
        self.runs = f"{shared}:runs"  # run id -> latest snapshot (a hash)
        self.finished = f"{shared}:finished"  # run id -> when its entry expires (a zset)
        self.cancels = f"{shared}:cancels"  # cancel requests (a stream)

    def events(self, run_id: str) -> str:
        return f"{self.prefix}:run:{{{run_id}}}:events"

    def checkpoint(self, run_id: str) -> str:
        return f"{self.prefix}:run:{{{run_id}}}:checkpoint"

    def cancel(self, run_id: str) -> str:
        return f"{self.prefix}:run:{{{run_id}}}:cancel"

    def tools(self, run_id: str) -> str:
        """The run's tool-call records: a hash, call id -> record."""
        return f"{self.prefix}:run:{{{run_id}}}:tools"

    def run_keys(self, run_id: str) -> list[str]:
        """Every key of one run (one hash slot): events, checkpoint, cancel, tools."""
        return [
            self.events(run_id),
            self.checkpoint(run_id),
            self.cancel(run_id),
            self.tools(run_id),
        ]


def entry_id(seq: int) -> str:
    """The stream id of event ``seq``."""
    return f"0-{seq + 1}"


def seq_of(identifier: bytes | str) -> int:
    """The seq of a stream id written by :func:`entry_id`.

    Raises:
        RemoteProtocolError: the id was not written by this package.
    """
    text = identifier.decode() if isinstance(identifier, bytes) else identifier
    ms, _, number = text.partition("-")
    if ms != "0" or not number.isdigit() or number == "0":
        raise RemoteProtocolError(f"stream entry id {text!r} was not written by openrouter-trio")
    return int(number) - 1


def encode_events(events: Sequence[Any]) -> list[dict[bytes, bytes]]:
    """The stream fields of each event, in order (one encode per event)."""
    out: list[dict[bytes, bytes]] = []
    encode = _ENCODER.encode
    for event in events:
        if isinstance(event, _RUN_TYPES):
            out.append({b"r": encode(event)})
        elif type(event) is UnknownEvent:
            out.append({b"u": bytes(event.raw)})
        else:
            out.append({b"e": encode(event)})
    return out


def encode_end(status: str, error: BaseException | None = None) -> dict[bytes, bytes]:
    """The fields of a run's terminal entry.

    Raises:
        ConfigurationError: ``status`` is not ``done``, ``failed`` or ``cancelled``.
    """
    if status not in END_STATUSES:
        raise ConfigurationError(f"status must be one of {sorted(END_STATUSES)}, got {status!r}.")
    fields = {b"end": status.encode()}
    if error is not None:
        if isinstance(error, RemoteRunError):
            info = _ErrorInfo(error.error_type, error.error_message)
        else:
            info = _ErrorInfo(type(error).__name__, str(error))
        fields[b"err"] = _ENCODER.encode(info)
    return fields


def decode_entry(fields: Mapping[Any, Any]) -> Any:
    """The event (or :class:`RunEnd`) of one stream entry.

    Raises:
        RemoteProtocolError: the entry was not written by this package.
    """
    data = fields.get(b"e")
    if data is not None:
        return decode_event(data)
    data = fields.get(b"r")
    if data is not None:
        try:
            return _RUN_DECODER.decode(data)
        except msgspec.DecodeError as exc:
            raise RemoteProtocolError(f"a run event in Redis is not valid: {exc}") from exc
    data = fields.get(b"u")
    if data is not None:
        return decode_event(data)
    status = fields.get(b"end")
    if status is not None and status.decode() in END_STATUSES:
        error = None
        info = fields.get(b"err")
        if info is not None:
            try:
                decoded = _ERROR_DECODER.decode(info)
            except msgspec.DecodeError as exc:
                raise RemoteProtocolError(f"a run error in Redis is not valid: {exc}") from exc
            error = RemoteRunError(decoded.type, decoded.message)
        return RunEnd(status.decode(), error)
    raise RemoteProtocolError(
        f"a stream entry with fields {sorted(fields)!r} was not written by openrouter-trio"
    )
