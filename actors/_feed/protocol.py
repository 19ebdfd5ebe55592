"""The websocket feed's protocol without I/O: commands in, frames out, close reasons.

The one job of this module is to turn a client's text message into a typed
command (:func:`decode_command`) and a session's events, snapshots and feed
metadata into the JSON of CloudEvents frames (:class:`FrameCache` for events,
:func:`build_frame` and the session and index frame builders for the rest),
and JSON into websocket frames (:func:`text_frame`). ``actors._feed.connection``
does the trio part. It imports only the stdlib, msgspec and other sans-io
modules. The protocol is described, with example bytes, in
``docs/guides/websocket-feed.md``.

Invariants:

1. **No I/O, no clock but the frame stamp.** Nothing here blocks or
   checkpoints; the only ambient input is :func:`_now`, the ``time`` of a frame.
2. **Encoding never fails.** A value msgspec cannot encode becomes a
   ``"<unencodable T>"`` placeholder instead of raising, so one odd event
   cannot break a connection.
3. **One encode per event per session.** :class:`FrameCache` keeps the JSON
   and the websocket frame of a session's recent events, so every subscriber
   of the session sends the same bytes and the JSON and framing cost is paid
   once, not once per client (issue 13).
4. **No secrets.** :class:`Auth` redacts its token in its repr, and a bad
   ``auth`` command's error never quotes what was sent.
5. **Bounded decoding.** A command nested deeper than ``MAX_COMMAND_DEPTH``
   is refused before msgspec sees it (a recursion error would otherwise be
   the server's failure, not the client's).
6. **Errors name the value.** A bad setting raises
   :class:`~runtime._base.errors.ConfigurationError` with one sentence quoting it
   with ``!r`` (never the token's value).
"""

from __future__ import annotations

import math
import re
import struct
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeAlias, final

import msgspec

from runtime._base.errors import ConfigurationError
from runtime._protocol.events import StreamEvent, UnknownEvent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

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
    "DEFAULT_MAX_UNAUTHENTICATED",
    "DEFAULT_SEND_BUFFER",
    "MAX_COMMAND_DEPTH",
    "PROTOCOL",
    "AnyCommand",
    "Auth",
    "Close",
    "Command",
    "CommandError",
    "DashboardAddress",
    "Envelope",
    "FeedStatistics",
    "FrameCache",
    "Ping",
    "Subscribe",
    "SubscribeAll",
    "SubscribeIndex",
    "Unsubscribe",
    "UnsubscribeAll",
    "UnsubscribeIndex",
    "batch_payload",
    "build_frame",
    "decode_command",
    "escaped",
    "event_frames",
    "event_type",
    "header_value",
    "index_frames",
    "index_snapshot_frame",
    "optional_seconds",
    "positive_int",
    "resync_frame",
    "seconds",
    "session_frame",
    "text_frame",
    "type_filter",
]

# -- constants -----------------------------------------------------------------------

# RFC 6455 §7.4.1 close codes the feed uses.
CLOSE_GOING_AWAY: Final = 1001
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_INVALID_DATA: Final = 1007
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_TRY_AGAIN_LATER: Final = 1013

DEFAULT_MAX_CONNECTIONS: Final = 256
DEFAULT_MAX_UNAUTHENTICATED: Final = 16
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
CACHE_SIZE: Final = 4096

MAX_COMMAND_DEPTH: Final = 16
"""The deepest nesting of arrays and objects a command may have."""

Envelope: TypeAlias = Literal["cloudevents", "compact"]

# -- commands (client → server) ------------------------------------------------------

_Id: TypeAlias = Annotated[str, msgspec.Meta(max_length=128)] | int | None
_Types: TypeAlias = (
    Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=128)]],
        msgspec.Meta(min_length=1, max_length=64),
    ]
    | None
)


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of the commands a client sends; unknown fields are ignored.

    ``id`` (a string, a number or absent) is echoed as ``correlationid`` in the
    frames that answer the command.
    """

    id: _Id = None


class Auth(Command, frozen=True, kw_only=True, tag="auth"):
    token: str

    def __repr__(self) -> str:
        return "Auth(token=<redacted>)"  # invariant 4


class SubscribeIndex(Command, frozen=True, kw_only=True, tag="subscribe_index"):
    pass


class UnsubscribeIndex(Command, frozen=True, kw_only=True, tag="unsubscribe_index"):
    pass


class Subscribe(Command, frozen=True, kw_only=True, tag="subscribe"):
    session: Annotated[str, msgspec.Meta(max_length=256)]
    after: int = -1
    types: _Types = None
    batch: bool = False
    envelope: Envelope = "cloudevents"


class Unsubscribe(Command, frozen=True, kw_only=True, tag="unsubscribe"):
    session: Annotated[str, msgspec.Meta(max_length=256)]


class SubscribeAll(Command, frozen=True, kw_only=True, tag="subscribe_all"):
    replay: bool = False
    types: _Types = None
    batch: bool = False
    envelope: Envelope = "cloudevents"


class UnsubscribeAll(Command, frozen=True, kw_only=True, tag="unsubscribe_all"):
    pass


class Ping(Command, frozen=True, kw_only=True, tag="ping"):
    pass


AnyCommand: TypeAlias = (
    Auth
    | SubscribeIndex
    | UnsubscribeIndex
    | Subscribe
    | Unsubscribe
    | SubscribeAll
    | UnsubscribeAll
    | Ping
)
_COMMAND_DECODER: Final[msgspec.json.Decoder[AnyCommand]] = msgspec.json.Decoder(AnyCommand)
_COMMAND_TYPES: Final = frozenset(
    str(cls.__struct_config__.tag)
    for cls in (
        Auth,
        SubscribeIndex,
        UnsubscribeIndex,
        Subscribe,
        Unsubscribe,
        SubscribeAll,
        UnsubscribeAll,
        Ping,
    )
)


class _Probe(msgspec.Struct):
    type: str


_PROBE_DECODER: Final = msgspec.json.Decoder(_Probe)
_STRINGS: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS: Final = re.compile(r"[\[\]{}]")


def _too_deep(message: str) -> bool:
    """Whether arrays/objects nest deeper than ``MAX_COMMAND_DEPTH`` (invariant 5)."""
    if message.count("[") + message.count("{") <= MAX_COMMAND_DEPTH:
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", message)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_COMMAND_DEPTH:
                return True
        else:
            depth -= 1
    return False


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
    type with a bad payload, text that is not a JSON command, or JSON nested
    deeper than ``MAX_COMMAND_DEPTH`` is.
    """
    if _too_deep(message):
        return CommandError(
            code="too_deep",
            message=f"Malformed command: JSON nested deeper than {MAX_COMMAND_DEPTH!r} levels.",
            command=None,
            fatal=True,
        )
    try:
        return _COMMAND_DECODER.decode(message)
    except (msgspec.DecodeError, RecursionError) as exc:
        try:
            kind: str | None = _PROBE_DECODER.decode(message).type
        except (msgspec.DecodeError, RecursionError):
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


def type_filter(types: Sequence[str] | None) -> Callable[[str], bool] | None:
    """A predicate for event types: exact names, or prefixes written ``"response.*"``."""
    if not types:
        return None
    exact = frozenset(t for t in types if not t.endswith("*"))
    prefixes = tuple(t[:-1] for t in types if t.endswith("*"))
    seen: dict[str, bool] = {}

    def accept(kind: str) -> bool:
        hit = seen.get(kind)
        if hit is None:
            hit = seen[kind] = kind in exact or kind.startswith(prefixes)
        return hit

    return accept


# -- websocket framing ---------------------------------------------------------------

_PACK_16: Final = struct.Struct("!BBH").pack
_PACK_64: Final = struct.Struct("!BBQ").pack


def text_frame(payload: bytes, *, rsv1: bool = False) -> bytes:
    """One unmasked, final websocket text frame (server to client) carrying ``payload``."""
    first = 0xC1 if rsv1 else 0x81
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return _PACK_16(first, 126, n) + payload
    return _PACK_64(first, 127, n) + payload


# -- frames (server → client) --------------------------------------------------------


def _unencodable(obj: Any) -> Any:
    return f"<unencodable {type(obj).__name__}>"


_ENCODER: Final = msgspec.json.Encoder()
_LENIENT_ENCODER: Final = msgspec.json.Encoder(enc_hook=_unencodable)


def _json(value: Any) -> bytes:
    """Encode a value as JSON; values msgspec cannot encode become placeholders."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError):
        try:
            return _LENIENT_ENCODER.encode(value)
        except (TypeError, ValueError, OverflowError):
            return _ENCODER.encode(_unencodable(value))


_TYPES: dict[type, str] = {}


def event_type(event: Any) -> str:
    """The event's ``type`` (cached per class for ``StreamEvent``s, whose class fixes it)."""
    cls = type(event)
    cached = _TYPES.get(cls)
    if cached is not None:
        return cached
    kind = getattr(event, "type", None)
    if not isinstance(kind, str):
        kind = cls.__name__
    if isinstance(event, StreamEvent) and cls is not UnknownEvent:
        _TYPES[cls] = kind
    return kind


def _now() -> bytes:
    """The current time in RFC 3339 (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


_FULL: Final = (
    b'{"specversion":"1.0","id":"%b:%d","source":"%b","type":%b,"time":"%b","sequence":%d%b,'
    b'"datacontenttype":"application/json","data":%b}'
)
_COMPACT: Final = b'{"session":"%b","sequence":%d,"type":%b,"data":%b}'


@final
class FrameCache:
    """Encoded frames of one session's recent events, shared by all its subscribers.

    Every connection following a session sends the same bytes for the same
    event, so the first subscription to reach a seq encodes it and the others
    reuse the JSON and the websocket frame: with M dashboards on one busy
    session the cost is paid once, not M times. A ring of ``CACHE_SIZE`` slots
    per envelope, indexed by ``seq``; a subscriber further behind than that
    encodes for itself. The frame's ``time`` is when the feed first encoded
    the event; ``trace`` (the run's trace id, when known) is added to the full
    envelope as the ``traceid`` attribute.
    """

    __slots__ = ("_rings", "sid", "source", "trace", "users")

    def __init__(self, session: str) -> None:
        self.sid = escaped(session).encode()
        self.source = b"/sessions/" + self.sid
        self.trace = b""
        # Per envelope: (seqs, payloads, frames, types); frames are filled lazily.
        self._rings: dict[bool, tuple[list[int], list[bytes], list[bytes | None], list[str]]] = {}
        self.users = 0

    def set_trace(self, trace_id: str | None) -> None:
        """Tag frames encoded from now on with the run's trace id (``None``: none)."""
        self.trace = b"" if not trace_id else b',"traceid":' + _json(trace_id)

    def _ring(self, compact: bool) -> tuple[list[int], list[bytes], list[bytes | None], list[str]]:
        ring = self._rings.get(compact)
        if ring is None:
            ring = self._rings[compact] = (
                [-1] * CACHE_SIZE,
                [b""] * CACHE_SIZE,
                [None] * CACHE_SIZE,
                [""] * CACHE_SIZE,
            )
        return ring

    def encode(
        self,
        events: Sequence[Any],
        first_seq: int,
        *,
        compact: bool = False,
        accept: Callable[[str], bool] | None = None,
        framed: bool = False,
    ) -> list[bytes]:
        """The payloads (or, with ``framed``, websocket frames) of consecutive events.

        Events whose type ``accept`` refuses are left out. The hot path of the
        feed: a cache hit costs two list reads.
        """
        seqs, payloads, frames, kinds = self._ring(compact)
        out: list[bytes] = []
        stamp = b""
        seq = first_seq
        for event in events:
            slot = seq % CACHE_SIZE
            if seqs[slot] != seq:
                kind = event_type(event)
                data = _json(event.raw if type(event) is UnknownEvent else event)
                kind_json = _json(kind)
                if compact:
                    payload = _COMPACT % (self.sid, seq, kind_json, data)
                else:
                    if not stamp:
                        stamp = _now()
                    payload = _FULL % (
                        self.sid,
                        seq,
                        self.source,
                        kind_json,
                        stamp,
                        seq,
                        self.trace,
                        data,
                    )
                seqs[slot] = seq
                payloads[slot] = payload
                frames[slot] = None
                kinds[slot] = kind
            if accept is None or accept(kinds[slot]):
                if framed:
                    frame = frames[slot]
                    if frame is None:
                        frame = frames[slot] = text_frame(payloads[slot])
                    out.append(frame)
                else:
                    out.append(payloads[slot])
            seq += 1
        return out


def batch_payload(payloads: list[bytes]) -> bytes:
    """Several event frames as one message: a JSON array, in log order."""
    return b"[" + b",".join(payloads) + b"]"


def event_frames(sid: str, source: str, events: Sequence[Any], first_seq: int) -> list[str]:
    """The CloudEvents frames of consecutive events from ``first_seq`` (uncached, as text).

    ``source`` is ignored: a session's frames always have ``/sessions/<sid>``.
    """
    del source
    cache = FrameCache(sid)
    return [p.decode() for p in cache.encode(events, first_seq)]


def build_frame(
    *,
    id: str,
    source: str,
    type: str,
    data: Any,
    sequence: int | None = None,
    correlation: str | int | None = None,
) -> bytes:
    """One control frame (rare: built with a dict, not on the hot path)."""
    frame: dict[str, Any] = {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": type,
        "time": _now().decode(),
    }
    if sequence is not None:
        frame["sequence"] = sequence
    if correlation is not None:
        frame["correlationid"] = correlation
    frame["datacontenttype"] = "application/json"
    frame["data"] = data
    return _json(frame)


def escaped(text: str) -> str:
    """JSON string contents of ``text`` (escaped, without the quotes)."""
    return _json(text).decode()[1:-1]


def session_frame(
    session: str, kind: str, seq: int, data: dict[str, Any], correlation: str | int | None = None
) -> bytes:
    """A ``session.*`` control frame of one session (``data`` gains its ``session``)."""
    return build_frame(
        id=f"{escaped(session)}:{kind}:{seq}",
        source=f"/sessions/{escaped(session)}",
        type=kind,
        data={"session": session, **data},
        sequence=seq,
        correlation=correlation,
    )


def resync_frame(
    session: str, missed_from: int, resume: int, last_sent: int, snapshot: Any
) -> bytes:
    """The ``resync`` frame: retention dropped seqs ``missed_from .. resume - 1``.

    ``sequence`` is ``resume - 1``, the seq a client resumes after.
    """
    return build_frame(
        id=f"{escaped(session)}:resync:{resume - 1}",
        source=f"/sessions/{escaped(session)}",
        type="resync",
        data={
            "session": session,
            "reason": "lagged",
            "missed_from": missed_from,
            "missed_to": resume - 1,
            "missed": resume - missed_from,
            "last_sent": last_sent,
            "next_seq": resume,
            "snapshot": snapshot,
        },
        sequence=resume - 1,
    )


def index_frames(updates: Sequence[Any], first_seq: int) -> list[bytes]:
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


def index_snapshot_frame(
    reason: str, seq: int, sessions: Any, correlation: str | int | None = None
) -> bytes:
    """The ``sessions.snapshot`` frame: every session, as of the index's ``seq``."""
    return build_frame(
        id=f"sessions:snapshot:{seq}",
        source="/sessions",
        type="sessions.snapshot",
        data={"reason": reason, "sessions": sessions},
        sequence=seq,
        correlation=correlation,
    )


# -- public records ------------------------------------------------------------------


class FeedStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of an :class:`EventFeed`, from :meth:`EventFeed.statistics`.

    Attributes:
        connections: websocket connections open now (authenticated or not).
        unauthenticated: connections open now that have not authenticated yet
            (handshakes in progress included).
        subscriptions: session subscriptions open now (``subscribe_all`` counts
            each session it follows; the index counts one).
        accepted: connections accepted so far.
        rejected: handshakes rejected (origin, token) or closed at once (limits).
        frames_sent: frames written to clients so far (events and control).
        messages_sent: websocket messages written so far (a batch is one).
        frames_dropped: event frames dropped; always 0 since replay is paced by
            the socket (kept for compatibility).
        resyncs: ``resync`` (and index re-snapshot) frames sent so far: each one
            means retention had dropped events a client still needed.
    """

    connections: int
    subscriptions: int
    accepted: int
    rejected: int
    frames_sent: int
    frames_dropped: int
    resyncs: int
    unauthenticated: int = 0
    messages_sent: int = 0


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
    frame: bytes | None = None


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
