"""Structured output: the response format a run asks for, and how its final text is judged.

Sans-io: stdlib, msgspec and the agent layer only.

Rules:

1. ``call_model(output=X)`` takes a msgspec type (a ``Struct`` class,
   ``list[int]``, a ``TypedDict``, ...) or a JSON-Schema dict. It becomes the
   request's ``text.format``: ``{"type": "json_schema", "name": <name>,
   "schema": <schema>}`` (Responses API wire format). The name is the Struct's
   (or the schema's ``title``), reduced to ``[A-Za-z0-9_-]``, else ``"output"``;
   a msgspec type's schema is :func:`~runtime._agent.schema.json_schema_for`'s
   (``$defs`` inlined); a dict is sent as given, after
   :func:`~runtime._agent.jsonschema.compile_schema` checked it.
2. The final text is judged by :meth:`OutputSpec.parse`: JSON-decoded and
   converted strictly to the msgspec type (``msgspec.json.decode(text,
   type=X)``), or validated against the JSON Schema. The typed value is what
   ``get_output()`` returns.
3. A text that fails is retried: the run appends the model's answer and a
   user message saying what was wrong (:meth:`OutputSpec.feedback`) and asks
   again, at most ``retries`` times (``call_model(output_retries=)``, default
   1). Then the run fails with :class:`StructuredOutputError` holding the last
   text and error.
4. Markdown code fences around the JSON (```` ```json ... ``` ````) are
   tolerated, since some models add them even when asked not to.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from runtime._agent.jsonschema import JSONSchemaError, Validator, compile_schema
from runtime._agent.schema import json_schema_for
from runtime._base.errors import ConfigurationError

__all__ = ["OutputSpec", "strip_code_fence"]

_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")
_FENCE: Final = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


def strip_code_fence(text: str) -> str:
    """The JSON inside a Markdown code fence, or the text unchanged."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


def _format_name(raw: Any) -> str:
    name = _NAME_CHARS.sub("_", raw)[:64] if isinstance(raw, str) else ""
    return name or "output"


class OutputSpec:
    """What ``output=`` asked for: the wire format and the judge of the final text.

    Build with :meth:`from_user`; immutable and shareable afterwards.
    """

    __slots__ = ("_decoder", "_format", "_retries", "_type", "_validator")

    def __init__(
        self,
        *,
        format: dict[str, Any],
        retries: int,
        output_type: Any = None,
        validator: Validator | None = None,
    ) -> None:
        self._format = format
        self._retries = retries
        self._type = output_type
        self._validator = validator
        self._decoder = (
            msgspec.json.Decoder(output_type, strict=True) if validator is None else None
        )

    @classmethod
    def from_user(cls, output: Any, *, retries: int = 1) -> OutputSpec:
        """Check ``output=`` and ``output_retries=``.

        Raises:
            ConfigurationError: ``output`` is neither a msgspec type nor a valid
                JSON Schema, or ``retries`` is not an integer >= 0.
        """
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(f"output_retries {retries!r} must be an integer >= 0")
        if isinstance(output, dict):
            try:
                validator = compile_schema(output)
            except ConfigurationError as exc:
                raise ConfigurationError(f"output: {exc}") from exc
            wire = {
                "type": "json_schema",
                "name": _format_name(output.get("title")),
                "schema": output,
            }
            return cls(format=wire, retries=retries, validator=validator)
        if output is None or isinstance(output, str | bytes | int | float | list | tuple):
            raise ConfigurationError(
                f"output {output!r} must be a msgspec type (e.g. a Struct class) or a JSON "
                "Schema dict"
            )
        try:
            schema = json_schema_for(output)
            msgspec.json.Decoder(output)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"output {output!r} is not a type msgspec can describe: {exc}"
            ) from exc
        name = _format_name(output.__name__ if isinstance(output, type) else None)
        wire = {"type": "json_schema", "name": name, "schema": schema}
        return cls(format=wire, retries=retries, output_type=output)

    @property
    def format(self) -> dict[str, Any]:
        """The ``text.format`` object sent to the model (a fresh copy of the top level)."""
        return dict(self._format)

    @property
    def retries(self) -> int:
        """How many times a failed answer is asked for again."""
        return self._retries

    def parse(self, text: str) -> Any:
        """The typed value of a final answer.

        Raises:
            ValueError: the text is not JSON, or does not match; the message
                says where (``msgspec.ValidationError``/``DecodeError``, or
                :class:`~runtime._agent.jsonschema.JSONSchemaError`).
        """
        body = strip_code_fence(text)
        if self._decoder is not None:
            try:
                return self._decoder.decode(body)
            except msgspec.ValidationError as exc:
                raise ValueError(str(exc)) from exc
            except msgspec.DecodeError as exc:
                raise ValueError(f"the answer is not valid JSON: {exc}") from exc
        assert self._validator is not None
        try:
            value = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise ValueError(f"the answer is not valid JSON: {exc}") from exc
        try:
            return self._validator.validate(value)
        except JSONSchemaError as exc:
            raise ValueError(str(exc)) from exc

    @staticmethod
    def feedback(reason: str) -> str:
        """The user message asking the model to try again after ``reason``."""
        return (
            f"Your answer does not match the required JSON schema: {reason}. "
            "Answer again with only the JSON value, matching the schema exactly."
        )
