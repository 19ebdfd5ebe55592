"""Our JSON Schema validator: schema checks, keyword behaviour, and a differential
test against the ``jsonschema`` package (a test-only dependency) as the oracle."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runtime._agent.jsonschema import JSONSchemaError, compile_schema, json_equal
from runtime._base.errors import ConfigurationError

# --- schema checks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "strng"}, "'type'"),
        ({"type": []}, "'type'"),
        ({"required": "a"}, "'required'"),
        ({"properties": {"a": {"type": "nope"}}}, "$.properties.a.type"),
        ({"minimum": "3"}, "'minimum'"),
        ({"exclusiveMinimum": True}, "'exclusiveMinimum'"),
        ({"multipleOf": 0}, "'multipleOf'"),
        ({"minLength": -1}, "'minLength'"),
        ({"maxItems": 1.5}, "'maxItems'"),
        ({"pattern": "("}, "'pattern'"),
        ({"patternProperties": {"[": {}}}, "'patternProperties'"),
        ({"anyOf": []}, "'anyOf'"),
        ({"oneOf": {"type": "string"}}, "'oneOf'"),
        ({"items": 3}, "$.items"),
        ({"$ref": "#/$defs/Missing"}, "'$ref'"),
        ({"$ref": "http://example.com/s.json"}, "'$ref'"),
        ({"enum": "abc"}, "'enum'"),
        ({"uniqueItems": "yes"}, "'uniqueItems'"),
        ({"dependentRequired": {"a": "b"}}, "'dependentRequired'"),
    ],
)
def test_a_malformed_schema_is_refused_naming_the_keyword(schema: Any, named: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid JSON Schema") as info:
        compile_schema(schema)
    assert named in str(info.value)


def test_a_schema_that_is_not_a_dict_or_bool_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"\[1\] at \$ is not a schema"):
        compile_schema([1])


def test_unknown_keywords_and_format_are_ignored() -> None:
    validator = compile_schema(
        {"type": "string", "format": "email", "x-vendor": {"any": 1}, "unevaluatedItems": False}
    )
    assert validator.validate("not an email") == "not an email"


# --- behaviour -------------------------------------------------------------------


def _error(schema: Any, value: Any) -> JSONSchemaError:
    with pytest.raises(JSONSchemaError) as info:
        compile_schema(schema).validate(value)
    return info.value


def test_errors_name_the_path_like_msgspec() -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
        "required": ["items"],
    }
    error = _error(schema, {"items": [1, "two"]})
    assert str(error) == "Expected `integer`, got `string` - at `$.items[1]`"
    assert _error(schema, {}).message == "Object missing required field `items`"


def test_additional_properties_false_names_the_unknown_field() -> None:
    schema = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    assert str(_error(schema, {"a": 1, "b": 2})) == "Object contains unknown field `b` - at `$`"


def test_refs_to_defs_and_recursion() -> None:
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                "required": ["children"],
            }
        },
    }
    validator = compile_schema(schema)
    assert validator.is_valid({"children": [{"children": []}]})
    assert _error(schema, {"children": [{}]}).path == "$.children[0]"


def test_json_semantics_of_numbers_and_booleans() -> None:
    assert compile_schema({"type": "integer"}).is_valid(3.0)
    assert not compile_schema({"type": "integer"}).is_valid(True)
    assert not compile_schema({"type": "number"}).is_valid(False)
    assert compile_schema({"enum": [1]}).is_valid(1.0)
    assert not compile_schema({"enum": [1]}).is_valid(True)
    assert not compile_schema({"const": False}).is_valid(0)
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal([True], [1])


def test_one_of_needs_exactly_one_branch() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"minimum": 0}]}
    assert compile_schema(schema).is_valid(-1)
    assert "branches [0, 1]" in _error(schema, 3).message


def test_any_of_reports_the_deepest_branch_error() -> None:
    schema = {
        "anyOf": [
            {"type": "null"},
            {"type": "object", "properties": {"n": {"type": "integer"}}},
        ]
    }
    assert str(_error(schema, {"n": "x"})) == "Expected `integer`, got `string` - at `$.n`"


def test_if_then_else_and_not() -> None:
    schema = {
        "if": {"properties": {"kind": {"const": "a"}}},
        "then": {"required": ["a"]},
        "else": {"not": {"required": ["a"]}},
    }
    validator = compile_schema(schema)
    assert validator.is_valid({"kind": "a", "a": 1})
    assert not validator.is_valid({"kind": "a"})
    assert not validator.is_valid({"kind": "b", "a": 1})


# --- differential test against jsonschema ------------------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20),
    st.floats(-20, 20, allow_nan=False).map(lambda f: round(f, 1)),
    st.sampled_from(["", "a", "ab", "abc", "x1", "ZZ", "hello"]),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "c", "x1", "n"]), inner, max_size=4),
    ),
    max_leaves=12,
)
type_names = st.sampled_from(["null", "boolean", "object", "array", "number", "string", "integer"])
small = st.integers(0, 4)
number = st.integers(-10, 10) | st.sampled_from([0.5, -1.5, 2.5])


def _schemas(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keyword = st.one_of(
        st.tuples(st.just("type"), type_names | st.lists(type_names, min_size=1, max_size=3)),
        st.tuples(st.just("enum"), st.lists(json_leaves, min_size=1, max_size=3)),
        st.tuples(st.just("const"), json_leaves),
        st.tuples(
            st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]), number
        ),
        st.tuples(st.just("multipleOf"), st.integers(1, 4)),
        st.tuples(st.sampled_from(["minLength", "maxLength"]), small),
        st.tuples(
            st.sampled_from(["minItems", "maxItems", "minProperties", "maxProperties"]), small
        ),
        st.tuples(st.just("pattern"), st.sampled_from(["^a", "b$", "[0-9]", "^[a-z]+$"])),
        st.tuples(st.just("uniqueItems"), st.booleans()),
        st.tuples(st.just("required"), st.lists(st.sampled_from(["a", "b", "n"]), max_size=2)),
        st.tuples(
            st.just("properties"),
            st.dictionaries(st.sampled_from(["a", "b", "n"]), inner, max_size=2),
        ),
        st.tuples(st.just("additionalProperties"), inner),
        st.tuples(st.just("patternProperties"), st.dictionaries(st.just("^x"), inner, max_size=1)),
        st.tuples(st.just("items"), inner),
        st.tuples(st.just("prefixItems"), st.lists(inner, min_size=1, max_size=2)),
        st.tuples(st.just("contains"), inner),
        st.tuples(
            st.sampled_from(["allOf", "anyOf", "oneOf"]), st.lists(inner, min_size=1, max_size=2)
        ),
        st.tuples(st.just("not"), inner),
        st.tuples(st.just("$ref"), st.just("#/$defs/D")),
        st.tuples(st.just("format"), st.just("email")),
    )
    return st.lists(keyword, max_size=3).map(dict) | st.booleans()


schemas = st.recursive(
    st.booleans() | st.just({}) | type_names.map(lambda t: {"type": t}), _schemas, max_leaves=6
)
defs = st.sampled_from([{"type": "integer"}, {"type": "string", "minLength": 1}, True])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas, definition=defs, value=json_values)
def test_agrees_with_jsonschema(schema: Any, definition: Any, value: Any) -> None:
    if isinstance(schema, dict):
        schema = {**schema, "$defs": {"D": definition}}
    expected = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert compile_schema(schema).is_valid(value) is expected, (schema, value)
