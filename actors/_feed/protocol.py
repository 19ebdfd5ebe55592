"""The websocket feed's protocol without I/O: commands in, frames out, close reasons.

The one job of this module is to turn a client's text message into a typed
command (:func:`decode_command`) and a session's events, snapshots and feed
metadata into the JSON text of CloudEvents frames (:func:`event_frame`,
:class:`FrameCache`, :func:`build_frame` and the session and index frame
builders). ``actors._feed.server`` (the listener, limits, handshakes) and
``actors._feed.connection`` (each connection's tasks, the outbox and the writes) do the
trio and trio-websocket part. It imports only the stdlib, msgspec and
other sans-io modules. The protocol is described, with example bytes, in
``docs/guides/websocket-feed.md``.

Invariants:

1. **No I/O, no clock but the frame stamp.** Nothing here blocks or
   checkpoints; the only ambient input is :func:`_now`, the ``time`` of a frame.
2. **Encoding never fails.** A value msgspec cannot encode becomes a
   ``"<unencodable T>"`` placeholder instead of raising, so one odd event
   cannot break a connection.
3. **One encode per event per session.** :class:`FrameCache` keeps the text of
   a session's recent event frames, so every subscriber of the session sends
   the same bytes and the JSON cost is paid once.
4. **No secrets.** :class:`Auth` redacts its token in its repr, and a bad
   ``auth`` command's error never quotes what was sent.
5. **Errors name the value.** A bad setting raises
   :class:`~runtime._base.errors.ConfigurationError` with one sentence quoting it
   with ``!r`` (never the token's value).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeAlias, final

import msgspec

from runtime._base.errors import ConfigurationError
from runtime._protocol.events import StreamEvent, UnknownEvent

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "CACHE_SIZE",
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_UNSUPPORTED_DATA",
    "DEFAULT_AUTH_TIMEOUT",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_SUBSCRIPTIONS",
    "DEFAULT_SEND_BUFFER",
    "PROTOCOL",
    "AnyCommand",
    "Auth",
    "Close",
    "Command",
    "CommandError",
    "DashboardAddress",
    "FeedStatistics",
    "FrameCache",
    "Ping",
    "Subscribe",
    "SubscribeIndex",
    "Unsubscribe",
    "UnsubscribeIndex",
    "build_frame",
    "decode_command",
    "escaped",
    "event_frame",
    "event_frames",
    "header_value",
    "index_frames",
    "index_snapshot_frame",
    "optional_seconds",
    "positive_int",
    "resync_frame",
    "seconds",
    "session_frame",
]

# -- constants -----------------------------------------------------------------------

# RFC 6455 §7.4.1 close codes the feed uses (1009 is sent by trio-websocket itself).
CLOSE_GOING_AWAY: Final = 1001
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_INVALID_DATA: Final = 1007
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_TRY_AGAIN_LATER: Final = 1013

DEFAULT_MAX_CONNECTIONS: Final = 256
DEFAULT_MAX_MESSAGE_SIZE: Final = 64 * 1024
DEFAULT_MAX_SUBSCRIPTIONS: Final = 64
DEFAULT_HEARTBEAT_INTERVAL: Final = 20.0
DEFAULT_IDLE_TIMEOUT: Final = 60.0
DEFAULT_AUTH_TIMEOUT: Final = 10.0
DEFAULT_SEND_BUFFER: Final = 1024
DEFAULT_CLOSE_TIMEOUT: Final = 2.0

PROTOCOL: Final = "openrouter-trio.feed/1"
"""The feed protocol's name and version, sent in ``feed.ready``."""

# Encoded frames kept per followed session for its other subscribers (FrameCache).
CACHE_SIZE: Final = 1024


# -- commands (client → server) ------------------------------------------------------


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of the commands a client sends; unknown fields are ignored."""


class Auth(Command, frozen=True, kw_only=True, tag="auth"):
    token: str

    def __repr__(self) -> str:
        return "Auth(token=<redacted>)"  # invariant 4


class SubscribeIndex(Command, frozen=True, kw_only=True, tag="subscribe_index"):
    pass


class UnsubscribeIndex(Command, frozen=True, kw_only=True, tag="unsubscribe_index"):
    pass


class Subscribe(Command, frozen=True, kw_only=True, tag="subscribe"):
    session: str
    after: int = -1


class Unsubscribe(Command, frozen=True, kw_only=True, tag="unsubscribe"):
    session: str


class Ping(Command, frozen=True, kw_only=True, tag="ping"):
    id: str | int | None = None


AnyCommand: TypeAlias = Auth | SubscribeIndex | UnsubscribeIndex | Subscribe | Unsubscribe | Ping
_COMMAND_DECODER: Final[msgspec.json.Decoder[AnyCommand]] = msgspec.json.Decoder(AnyCommand)
_COMMAND_TYPES: Final = frozenset(
    str(cls.__struct_config__.tag)
    for cls in (Auth, SubscribeIndex, UnsubscribeIndex, Subscribe, Unsubscribe, Ping)
)


class _Probe(msgspec.Struct):
    type: str


_PROBE_DECODER: Final = msgspec.json.Decoder(_Probe)


class CommandError(msgspec.Struct, frozen=True, kw_only=True):
    """A message that is not a command the server can act on, and what to tell the client.

    Attributes:
        code: the ``feed.error`` frame's ``code``.
        message: the ``feed.error`` frame's ``message``.
        command: the command type to quote back (``None``: none could be read).
        fatal: close the connection (1007) instead of carrying on.
    """

    code: str
    message: str
    command: str | None
    fatal: bool


def decode_command(message: str) -> AnyCommand | CommandError:
    """The command in one text message, or why there is none.

    An unknown ``type`` is not fatal (newer clients may send more); a known
    type with a bad payload, or text that is not a JSON command, is.
    """
    try:
        return _COMMAND_DECODER.decode(message)
    except msgspec.DecodeError as exc:
        try:
            kind: str | None = _PROBE_DECODER.decode(message).type
        except msgspec.DecodeError:
            kind = None
        if kind is not None and kind not in _COMMAND_TYPES:
            shown = kind if len(kind) <= 64 else kind[:64] + "..."
            return CommandError(
                code="unknown_command",
                message=f"Unknown command type {shown!r}.",
                command=shown,
                fatal=False,
            )
        # Never echo an auth command's content (invariant 4).
        detail = "an auth command needs a string token" if kind == "auth" else str(exc)
        return CommandError(
            code="invalid_command",
            message=f"Malformed command: {detail}.",
            command=kind,
            fatal=True,
        )


# -- frames (server → client) --------------------------------------------------------


def _unencodable(obj: Any) -> Any:
    return f"<unencodable {type(obj).__name__}>"


_ENCODER: Final = msgspec.json.Encoder()
_LENIENT_ENCODER: Final = msgspec.json.Encoder(enc_hook=_unencodable)


def _json(value: Any) -> str:
    """Encode a value as JSON text; values msgspec cannot encode become placeholders."""
    try:
        return _ENCODER.encode(value).decode()
    except (TypeError, ValueError, OverflowError):
        try:
            return _LENIENT_ENCODER.encode(value).decode()
        except (TypeError, ValueError, OverflowError):
            return _ENCODER.encode(_unencodable(value)).decode()


_TYPE_JSON: dict[type, str] = {}


def _type_json(event: Any) -> str:
    """The event's ``type`` as a JSON string literal (cached per event class)."""
    cls = type(event)
    cached = _TYPE_JSON.get(cls)
    if cached is not None:
        return cached
    if cls is UnknownEvent:
        return _json(event.type)
    if isinstance(event, StreamEvent):
        text = _json(event.type)
    else:
        kind = getattr(event, "type", None)
        text = _json(kind if isinstance(kind, str) else cls.__name__)
        if not isinstance(kind, str):
            _TYPE_JSON[cls] = text
        return text
    _TYPE_JSON[cls] = text
    return text


def _now() -> str:
    """The current time in RFC 3339 (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_frame(sid: str, source: str, event: Any, seq: int, stamp: str) -> str:
    """The CloudEvents frame of one log event: a single msgspec encode plus a format.

    ``sid`` and ``source`` are JSON string contents (escaped, without quotes).
    """
    data = event.raw if type(event) is UnknownEvent else event
    return (
        f'{{"specversion":"1.0","id":"{sid}:{seq}","source":"{source}",'
        f'"type":{_type_json(event)},"time":"{stamp}","sequence":{seq},'
        f'"datacontenttype":"application/json","data":{_json(data)}}}'
    )


def event_frames(sid: str, source: str, events: Sequence[Any], first_seq: int) -> list[str]:
    """The frames of consecutive events from ``first_seq``, all stamped now (uncached)."""
    stamp = _now()
    return [event_frame(sid, source, e, first_seq + i, stamp) for i, e in enumerate(events)]


@final
class FrameCache:
    """Encoded frames of one session's recent events, shared by all its subscribers.

    Every connection following a session sends the same bytes for the same
    event, so the first subscription to reach a seq encodes it and the others
    reuse the text: with M dashboards on one busy session the JSON cost is paid
    once, not M times. A ring of ``CACHE_SIZE`` slots indexed by ``seq``; a
    subscriber further behind than that encodes for itself. The frame's
    ``time`` is when the feed first encoded the event.
    """

    __slots__ = ("_seqs", "_texts", "sid", "source", "users")

    def __init__(self, session: str) -> None:
        self.sid = escaped(session)
        self.source = f"/sessions/{self.sid}"
        self._seqs = [-1] * CACHE_SIZE
        self._texts = [""] * CACHE_SIZE
        self.users = 0

    def frames(self, events: Sequence[Any], first_seq: int) -> list[str]:
        """The frames of consecutive events starting at ``first_seq`` (the hot path)."""
        seqs = self._seqs
        texts = self._texts
        sid = self.sid
        source = self.source
        stamp = ""
        out = []
        seq = first_seq
        for event in events:
            slot = seq % CACHE_SIZE
            if seqs[slot] == seq:
                out.append(texts[slot])
            else:
                if not stamp:
                    stamp = _now()
                text = event_frame(sid, source, event, seq, stamp)
                seqs[slot] = seq
                texts[slot] = text
                out.append(text)
            seq += 1
        return out


def build_frame(*, id: str, source: str, type: str, data: Any, sequence: int | None = None) -> str:
    """One control frame (rare: built with a dict, not on the hot path)."""
    frame: dict[str, Any] = {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": type,
        "time": _now(),
    }
    if sequence is not None:
        frame["sequence"] = sequence
    frame["datacontenttype"] = "application/json"
    frame["data"] = data
    return _json(frame)


def escaped(text: str) -> str:
    """JSON string contents of ``text`` (escaped, without the quotes)."""
    return _json(text)[1:-1]


def session_frame(session: str, kind: str, seq: int, data: dict[str, Any]) -> str:
    """A ``session.*`` control frame of one session (``data`` gains its ``session``)."""
    return build_frame(
        id=f"{escaped(session)}:{kind}:{seq}",
        source=f"/sessions/{escaped(session)}",
        type=kind,
        data={"session": session, **data},
        sequence=seq,
    )


def resync_frame(session: str, reason: str, last: int, next_seq: int, snapshot: Any) -> str:
    """The ``resync`` frame of a subscription that resumes after ``next_seq - 1``."""
    return build_frame(
        id=f"{escaped(session)}:resync:{next_seq - 1}",
        source=f"/sessions/{escaped(session)}",
        type="resync",
        data={
            "session": session,
            "reason": reason,
            "last_sent": last,
            "next_seq": next_seq,
            "missed": next_seq - 1 - last,
            "snapshot": snapshot,
        },
        sequence=next_seq - 1,
    )


def index_frames(updates: Sequence[Any], first_seq: int) -> list[str]:
    """The ``session.<kind>`` frames of consecutive registry updates from ``first_seq``."""
    return [
        build_frame(
            id=f"sessions:{first_seq + i}",
            source="/sessions",
            type=f"session.{update.kind}",
            data=update.session,
            sequence=first_seq + i,
        )
        for i, update in enumerate(updates)
    ]


def index_snapshot_frame(reason: str, seq: int, sessions: Any) -> str:
    """The ``sessions.snapshot`` frame: every session, as of the index's ``seq``."""
    return build_frame(
        id=f"sessions:snapshot:{seq}",
        source="/sessions",
        type="sessions.snapshot",
        data={"reason": reason, "sessions": sessions},
        sequence=seq,
    )


# -- public records ------------------------------------------------------------------


class FeedStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of an :class:`EventFeed`, from :meth:`EventFeed.statistics`.

    Attributes:
        connections: websocket connections open now (authenticated or not).
        subscriptions: session and index subscriptions open now.
        accepted: connections accepted so far.
        rejected: handshakes rejected (origin, token) or closed at once (limit).
        frames_sent: frames written to clients so far.
        frames_dropped: event frames dropped by full outboxes (each followed by a
            ``resync``).
        resyncs: ``resync`` (and index re-snapshot) frames sent so far.
    """

    connections: int
    subscriptions: int
    accepted: int
    rejected: int
    frames_sent: int
    frames_dropped: int
    resyncs: int


class DashboardAddress(msgspec.Struct, frozen=True, kw_only=True):
    """Where :func:`serve_dashboard` listens.

    Attributes:
        host: the host both servers are bound to.
        http_port: the port of the page (plain HTTP).
        feed_port: the port of the websocket feed.
        url: the page's URL; open ``url + "#token=" + token`` in a browser.
    """

    host: str
    http_port: int
    feed_port: int
    url: str


class Close(msgspec.Struct, frozen=True):
    """Why the server closes a connection, and the error frame to send first."""

    code: int
    reason: str
    frame: str | None = None


# -- handshake and settings ------------------------------------------------------------


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of the first handshake header called ``name`` (lower case), if any."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def positive_int(name: str, value: object) -> int:
    """The setting ``name`` if it is a positive ``int`` (not a bool)."""
    if type(value) is not int or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}.")
    return value


def seconds(name: str, value: object) -> float:
    """The setting ``name`` as a positive, finite number of seconds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}.")
    return float(value)


def optional_seconds(name: str, value: object) -> float | None:
    """Like :func:`seconds`, but ``None`` (never) is allowed."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{name} must be a positive number of seconds or None, got {value!r}."
        )
    return float(value)
