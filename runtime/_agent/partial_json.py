"""An incremental parser for JSON that is still arriving: partial objects as text streams in.

Sans-io: stdlib and msgspec. Feed it the text deltas of a structured answer; after
each feed, :attr:`PartialJSON.value` is the best view of the document so far.

Rules:

1. **Each character is read once.** The parser is a state machine over a stack
   of open containers; feeding ``n`` characters costs O(n) however they are
   split. Taking a snapshot (:meth:`PartialJSON.snapshot`) copies the
   document, so a consumer may keep or mutate it.
2. **What a partial value holds:** open objects and arrays with the members
   finished so far; a string being read, with the characters read so far
   (escapes decoded; a half-read escape is left out); a number or a literal
   (``true``, ``false``, ``null``) only once it is complete (a number is
   complete when a delimiter follows it, or at :meth:`PartialJSON.close`),
   since ``1`` may still become ``12``. A key whose value has not started is
   left out.
3. **Strict JSON** (RFC 8259): anything else raises :class:`PartialJSONError`
   at the offending character, as does text after the document. Leading and
   trailing whitespace is fine.
4. :attr:`PartialJSON.done` is true once the top-level value is complete.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

import msgspec

__all__ = ["NOTHING", "PartialJSON", "PartialJSONError"]


class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"

    def __copy__(self) -> _Nothing:
        return self

    def __deepcopy__(self, memo: object) -> _Nothing:
        return self


NOTHING: Final = _Nothing()
"""The value of a document nothing of which has been read yet."""

_WHITESPACE: Final = frozenset(" \t\n\r")
_ENCODE: Final = msgspec.json.Encoder().encode
_DECODE: Final = msgspec.json.Decoder().decode
_NUMBER_CHARS: Final = frozenset("0123456789+-.eE")
_LITERALS: Final = {"true": True, "false": False, "null": None}
_ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}

# States
_VALUE: Final = 0  # a value must start here
_AFTER_VALUE: Final = 1  # a value ended: ',' or a closing bracket (or the end)
_KEY_OR_END: Final = 2  # just after '{': a key or '}'
_KEY: Final = 3  # after ',' in an object: a key
_COLON: Final = 4  # after a key: ':'
_STRING: Final = 5  # inside a string
_TOKEN: Final = 6  # inside a number or a literal
_VALUE_OR_END: Final = 7  # just after '[': a value or ']'


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value: a msgspec round trip, several times faster than
    ``copy.deepcopy`` (a lone surrogate, which JSON cannot carry, falls back to it)."""
    if value is NOTHING or value is None or isinstance(value, str | int | float):
        return value
    try:
        return _DECODE(_ENCODE(value))
    except (msgspec.EncodeError, UnicodeEncodeError):
        return copy.deepcopy(value)


class PartialJSONError(ValueError):
    """The text is not the start of a JSON document.

    Attributes:
        position: the index of the offending character in the whole text.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position})")
        self.position = position


class PartialJSON:
    """Parse one JSON document fed in pieces; read the partial value at any time.

    Example::

        parser = PartialJSON()
        parser.feed('{"city": "Par')
        parser.value  # {"city": "Par"}
        parser.feed('is", "temp": 2')
        parser.value  # {"city": "Paris"}  (2 may become 21)
        parser.feed("1}")
        parser.value  # {"city": "Paris", "temp": 21}
    """

    __slots__ = (
        "_escape",
        "_high",
        "_is_key",
        "_key",
        "_position",
        "_root",
        "_stack",
        "_state",
        "_string",
        "_token",
        "_version",
    )

    def __init__(self) -> None:
        self._root: Any = NOTHING
        # Open containers; for a dict, the key being filled is in ``_key``.
        self._stack: list[Any] = []
        self._key: list[str | None] = []
        self._state = _VALUE
        self._string: list[str] = []
        self._is_key = False
        self._escape: str | None = None  # "" after a backslash, "uXXXX" while reading hex
        self._token: list[str] = []
        self._high: int | None = None  # a high surrogate waiting for its low half
        self._position = 0
        self._version = 0

    @property
    def done(self) -> bool:
        """Whether the top-level value is complete."""
        return self._root is not NOTHING and not self._stack and self._state == _AFTER_VALUE

    @property
    def version(self) -> int:
        """Grows exactly when the partial value changes (to skip unchanged snapshots)."""
        return self._version

    @property
    def value(self) -> Any:
        """The partial value now (shared with the parser; see :meth:`snapshot`)."""
        if self._state == _STRING and not self._is_key:
            return self._with_partial_string()
        return self._root

    def snapshot(self) -> Any:
        """A deep copy of :attr:`value`."""
        return _copy(self.value)

    def _with_partial_string(self) -> Any:
        text = "".join(self._string)
        if not self._stack:
            return text
        # Show the string in its container without storing it there yet.
        root = _copy(self._root)
        node = root
        for container, key in zip(self._stack[:-1], self._key[:-1], strict=True):
            node = node[key] if isinstance(container, dict) else node[len(container) - 1]
        if isinstance(node, list):
            node.append(text)
        else:
            node[self._key[-1]] = text
        return root

    def _fail(self, message: str) -> PartialJSONError:
        return PartialJSONError(message, self._position)

    def _put(self, value: Any) -> None:
        self._version += 1
        if not self._stack:
            self._root = value
        else:
            container = self._stack[-1]
            if isinstance(container, list):
                container.append(value)
            else:
                container[self._key[-1]] = value
        self._state = _AFTER_VALUE

    def _open(self, container: dict[str, Any] | list[Any]) -> None:
        self._put(container)
        self._stack.append(container)
        self._key.append(None)
        self._state = _KEY_OR_END if isinstance(container, dict) else _VALUE_OR_END

    def _end_token(self) -> None:
        text = "".join(self._token)
        self._token.clear()
        if text in _LITERALS:
            self._put(_LITERALS[text])
            return
        try:
            number = json.loads(text)
        except ValueError:
            number = None
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise self._fail(f"{text!r} is not a JSON number or literal")
        self._put(number)

    def _end_string(self) -> None:
        text = "".join(self._string)
        self._string.clear()
        if self._is_key:
            self._key[-1] = text
            self._state = _COLON
        else:
            version = self._version
            self._put(text)
            self._version = version  # the value showed this string already

    def close(self) -> Any:
        """Declare the end of the text; return the complete value.

        Raises:
            PartialJSONError: the document is incomplete.
        """
        if self._state == _TOKEN and not self._stack:
            self._end_token()
        if not self.done:
            raise self._fail("the JSON document is incomplete")
        return self._root

    def feed(self, text: str) -> None:
        """Read more text.

        Raises:
            PartialJSONError: the text so far is not the start of one JSON document.
        """
        for char in text:
            self._step(char)
            self._position += 1

    def _step(self, char: str) -> None:
        state = self._state
        if state == _STRING:
            self._string_char(char)
            return
        if state == _TOKEN:
            if char in _NUMBER_CHARS or char.isalpha():
                self._token.append(char)
                return
            self._end_token()
            state = self._state
        if char in _WHITESPACE:
            return
        if state in (_VALUE, _VALUE_OR_END):
            if char == "]" and state == _VALUE_OR_END:
                self._close("]")
            elif char == "{":
                self._open({})
            elif char == "[":
                self._open([])
            elif char == '"':
                self._state = _STRING
                self._is_key = False
                self._version += 1  # the value now shows an empty string
            elif char in _NUMBER_CHARS or char in "tfn":
                self._state = _TOKEN
                self._token.append(char)
            else:
                raise self._fail(f"unexpected {char!r} where a value should start")
        elif state == _AFTER_VALUE:
            if not self._stack:
                raise self._fail(f"unexpected {char!r} after the JSON document")
            container = self._stack[-1]
            if char == ",":
                self._state = _KEY if isinstance(container, dict) else _VALUE
            elif char == "}" and isinstance(container, dict):
                self._close("}")
            elif char == "]" and isinstance(container, list):
                self._close("]")
            else:
                raise self._fail(f"unexpected {char!r} after a value")
        elif state in (_KEY_OR_END, _KEY):
            if char == '"':
                self._state = _STRING
                self._is_key = True
            elif char == "}" and state == _KEY_OR_END:
                self._close("}")
            else:
                raise self._fail(f"unexpected {char!r} where a key should start")
        elif state == _COLON:
            if char != ":":
                raise self._fail(f"unexpected {char!r} where ':' should be")
            self._state = _VALUE

    def _close(self, bracket: str) -> None:
        self._stack.pop()
        self._key.pop()
        self._state = _AFTER_VALUE  # the value is unchanged: no new version

    def _string_char(self, char: str) -> None:
        escape = self._escape
        if self._high is not None and escape is None and char != "\\":
            self._string.append(chr(self._high))
            self._high = None
        if escape is None:
            if char == '"':
                self._end_string()
            elif char == "\\":
                self._escape = ""
            elif char < " ":
                raise self._fail(f"control character {char!r} inside a string")
            else:
                self._string.append(char)
                if not self._is_key:
                    self._version += 1
            return
        if escape == "":
            if char != "u" and self._high is not None:
                self._string.append(chr(self._high))
                self._high = None
            if char == "u":
                self._escape = "u"
                return
            decoded = _ESCAPES.get(char)
            if decoded is None:
                raise self._fail(f"invalid escape '\\{char}' inside a string")
            self._escape = None
            self._string.append(decoded)
            self._version += not self._is_key
            return
        if char not in "0123456789abcdefABCDEF":
            raise self._fail(f"invalid \\u escape: {char!r} is not a hex digit")
        escape += char
        if len(escape) < 5:
            self._escape = escape
            return
        self._escape = None
        code = int(escape[1:], 16)
        high = self._high
        self._high = None
        if high is not None:
            if 0xDC00 <= code <= 0xDFFF:
                code = 0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)
            else:
                self._string.append(chr(high))  # a lone high surrogate, as json.loads keeps it
        if 0xD800 <= code <= 0xDBFF:
            # Hold a high surrogate back: the next escape may complete the pair.
            self._high = code
            return
        self._string.append(chr(code))
        self._version += not self._is_key
