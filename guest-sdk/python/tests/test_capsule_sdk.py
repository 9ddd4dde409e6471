"""Unit tests of capsule_sdk on plain CPython: schema derivation, argument conversion,
dispatch, result shapes, error mapping and the host stand-ins."""

from __future__ import annotations

import dataclasses
import enum
import json
import unittest
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import capsule_sdk
from capsule_sdk import (
    CallError,
    Image,
    InvalidArguments,
    Plugin,
    Text,
    ToolError,
    ToolOutput,
    testing,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Point:
    """A point on the plane.

    Attributes:
        x: Horizontal position.
        y: Vertical position.
    """

    x: float
    y: float = 0.0


@dataclasses.dataclass
class Range:
    """A range of lines."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("end must not be before start")


class Item(TypedDict):
    """One line of an order.

    Attributes:
        sku: The article number.
    """

    sku: str
    count: NotRequired[int]


class Summary(TypedDict):
    """Counts.

    Attributes:
        total: Everything.
        note: A remark, if any.
    """

    total: int
    note: str | None


def schema_of(plugin: Plugin, name: str) -> dict:
    return next(d for d in plugin.definitions() if d.name == name).input_schema


class SchemaTest(unittest.TestCase):
    def setUp(self) -> None:
        self.plugin = Plugin()

    def test_scalars_defaults_optional_and_docs(self) -> None:
        @self.plugin.tool(read_only=True, title="Count words")
        def word_count(
            text: str,
            limit: int | None = None,
            ratio: float = 0.5,
            strict: bool = False,
            label: Optional[str] = None,  # noqa: UP045 (the old spelling works too)
        ) -> dict:
            """Count the words of a text.

            Hard-wrapped lines
            are joined.

            - lists keep
            - their lines

            Args:
                text: The text to count.
                limit: Stop after this many
                    words (continued line).
            """
            return {}

        definition = self.plugin.definitions()[0]
        self.assertEqual(definition.name, "word_count")
        self.assertEqual(definition.title, "Count words")
        self.assertEqual(definition.annotations, {"read_only": True})
        self.assertEqual(
            definition.description,
            "Count the words of a text.\n\nHard-wrapped lines are joined.\n\n"
            "- lists keep\n- their lines",
        )
        self.assertEqual(
            definition.input_schema,
            {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "The text to count."},
                    "limit": {
                        "type": "integer",
                        "description": "Stop after this many words (continued line).",
                    },
                    "ratio": {"type": "number", "default": 0.5},
                    "strict": {"type": "boolean", "default": False},
                    "label": {"type": "string"},
                },
                "required": ["text"],
                "additionalProperties": False,
            },
        )
        self.assertIsNone(definition.output_schema)

    def test_containers_literals_enums_and_annotated(self) -> None:
        @self.plugin.tool
        def f(
            tags: list[str],
            weights: dict[str, float],
            mode: Literal["fast", "slow"] = "fast",
            color: Color = Color.RED,
            note: Annotated[str, "A note for the log."] = "",
            anything: Any = None,
            nested: list[list[int | None]] | None = None,
        ) -> str:
            """Doc."""
            return ""

        props = schema_of(self.plugin, "f")["properties"]
        self.assertEqual(props["tags"], {"type": "array", "items": {"type": "string"}})
        self.assertEqual(
            props["weights"], {"type": "object", "additionalProperties": {"type": "number"}}
        )
        self.assertEqual(
            props["mode"], {"enum": ["fast", "slow"], "type": "string", "default": "fast"}
        )
        self.assertEqual(
            props["color"], {"enum": ["red", "green"], "type": "string", "default": "red"}
        )
        self.assertEqual(
            props["note"], {"type": "string", "description": "A note for the log.", "default": ""}
        )
        self.assertEqual(
            props["anything"],
            {
                "anyOf": [
                    {"type": "object"},
                    {"type": "array"},
                    {"type": "string"},
                    {"type": "number"},
                    {"type": "boolean"},
                    {"type": "null"},
                ]
            },
        )
        self.assertEqual(
            props["nested"],
            {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                },
            },
        )

    def test_objects_from_dataclasses_and_typeddicts(self) -> None:
        @self.plugin.tool
        def f(origin: Point, items: list[Item]) -> Summary:
            """Doc."""
            return {"total": 0, "note": None}

        definition = self.plugin.definitions()[0]
        props = definition.input_schema["properties"]
        self.assertEqual(
            props["origin"],
            {
                "type": "object",
                "description": "A point on the plane.",
                "properties": {
                    "x": {"type": "number", "description": "Horizontal position."},
                    "y": {"type": "number", "default": 0.0, "description": "Vertical position."},
                },
                "required": ["x"],
                "additionalProperties": False,
            },
        )
        self.assertEqual(
            props["items"]["items"],
            {
                "type": "object",
                "description": "One line of an order.",
                "properties": {
                    "sku": {"type": "string", "description": "The article number."},
                    "count": {"type": "integer"},
                },
                "required": ["sku"],
                "additionalProperties": False,
            },
        )
        # Output: nullable instead of left out, no additionalProperties.
        self.assertEqual(
            definition.output_schema,
            {
                "type": "object",
                "description": "Counts.",
                "properties": {
                    "total": {"type": "integer", "description": "Everything."},
                    "note": {
                        "anyOf": [{"type": "string"}, {"type": "null"}],
                        "description": "A remark, if any.",
                    },
                },
                "required": ["total", "note"],
            },
        )

    def test_definition_errors(self) -> None:
        with self.assertRaisesRegex(ValueError, "needs a docstring"):

            @self.plugin.tool
            def undocumented(x: int) -> str:
                return ""

        with self.assertRaisesRegex(TypeError, "parameter x needs a type annotation"):

            @self.plugin.tool
            def unannotated(x) -> str:  # type: ignore[no-untyped-def]
                """Doc."""
                return ""

        with self.assertRaisesRegex(TypeError, "unsupported type"):

            @self.plugin.tool
            def weird(x: complex) -> str:
                """Doc."""
                return ""

        with self.assertRaisesRegex(ValueError, "must match"):

            @self.plugin.tool(name="has space")
            def named() -> str:
                """Doc."""
                return ""

        @self.plugin.tool
        def twice() -> str:
            """Doc."""
            return ""

        with self.assertRaisesRegex(ValueError, "two tools are named twice"):
            self.plugin.tool(name="twice")(named_again)


def named_again() -> str:
    """Doc."""
    return ""


class CallTest(unittest.TestCase):
    def setUp(self) -> None:
        self.plugin = Plugin()
        testing.reset()
        tool = self.plugin.tool

        @tool
        def greet(name: str, times: int = 1, shout: bool | None = None) -> str:
            """Greet someone."""
            greeting = " ".join([f"Hello, {name}!"] * times)
            return greeting.upper() if shout else greeting

        @tool
        def measure(origin: Point, items: list[Item], scale: float = 1.0) -> Summary:
            """Structured result."""
            count = sum(item.get("count", 1) for item in items)
            return {"total": int(count * scale + origin.x), "note": None}

        @tool
        def point(color: Color) -> Point:
            """A dataclass result."""
            return Point(1.5, 2.0 if color is Color.GREEN else 0.0)

        @tool
        def lines(span: Range) -> int:
            """Validated in __post_init__."""
            return span.end - span.start

        @tool
        def numbers() -> list[int]:
            """A non-object JSON result."""
            return [1, 2]

        @tool
        def picture() -> list:
            """Content blocks."""
            return [Text("a"), Image(b"\x89PNG", "image/png")]

        @tool
        def full() -> ToolOutput:
            """A full output."""
            return ToolOutput([Text("careful")], structured={"k": 1}, is_error=True)

        @tool
        def nothing() -> None:
            """No result."""

        @tool
        def fail(kind: str) -> str:
            """Raises."""
            if kind == "tool":
                raise ToolError("the file is empty")
            if kind == "args":
                raise InvalidArguments("use a positive count")
            if kind == "bug":
                return {}["missing"]
            if kind == "exit":
                raise SystemExit(3)
            return "ok"

        @tool
        def bad_result() -> Summary:
            """Returns a list where an object is declared."""
            return [1]  # type: ignore[return-value]

        @tool
        def nan() -> dict:
            """Returns a value JSON cannot carry."""
            return {"x": float("nan")}

    def test_text_and_defaults(self) -> None:
        out = self.plugin.call("greet", '{"name": "Ada"}')
        self.assertEqual(out.content, [Text("Hello, Ada!")])
        self.assertIsNone(out.structured)
        self.assertEqual(
            self.plugin.call("greet", {"name": "Bo", "times": 2.0, "shout": True}).text(),
            "HELLO, BO! HELLO, BO!",
        )

    def test_structured_results(self) -> None:
        out = self.plugin.call(
            "measure",
            {"origin": {"x": 1}, "items": [{"sku": "a", "count": 2}, {"sku": "b"}], "scale": 2},
        )
        self.assertEqual(out.structured, {"total": 7, "note": None})
        self.assertEqual(json.loads(out.text()), {"total": 7, "note": None})
        out = self.plugin.call("point", {"color": "green"})
        self.assertEqual(out.structured, {"x": 1.5, "y": 2.0})

    def test_other_results(self) -> None:
        self.assertEqual(self.plugin.call("numbers", {}).text(), "[1, 2]")
        self.assertIsNone(self.plugin.call("numbers", {}).structured)
        self.assertEqual(
            self.plugin.call("picture", {}).content,
            [Text("a"), Image(b"\x89PNG", "image/png")],
        )
        full = self.plugin.call("full", "")
        self.assertTrue(full.is_error)
        self.assertEqual(full.structured, {"k": 1})
        self.assertEqual(self.plugin.call("nothing", {}).content, [])

    def assertCallError(self, kind: str, message: str, name: str, arguments: Any) -> None:
        with self.assertRaises(CallError) as raised:
            self.plugin.call(name, arguments)
        self.assertEqual(raised.exception.kind, kind)
        self.assertEqual(raised.exception.message, message)

    def test_argument_errors(self) -> None:
        self.assertCallError("unknown-tool", "nope", "nope", {})
        self.assertCallError("invalid-arguments", "`name`: missing required argument", "greet", {})
        self.assertCallError(
            "invalid-arguments", "`name`: expected a string, got integer 5", "greet", {"name": 5}
        )
        self.assertCallError(
            "invalid-arguments",
            "`times`: expected an integer, got number 1.5",
            "greet",
            {"name": "a", "times": 1.5},
        )
        self.assertCallError(
            "invalid-arguments",
            '`shout`: expected a boolean, got string "yes"',
            "greet",
            {"name": "a", "shout": "yes"},
        )
        self.assertCallError(
            "invalid-arguments",
            "`loud`: unknown argument (allowed: name, shout, times)",
            "greet",
            {"name": "a", "loud": True},
        )
        self.assertCallError(
            "invalid-arguments",
            '`items[1].count`: expected an integer, got string "x"',
            "measure",
            {"origin": {"x": 0}, "items": [{"sku": "a"}, {"sku": "b", "count": "x"}]},
        )
        self.assertCallError(
            "invalid-arguments",
            "`origin.z`: unknown field (allowed: x, y)",
            "measure",
            {"origin": {"x": 0, "z": 1}, "items": []},
        )
        self.assertCallError(
            "invalid-arguments",
            '`color`: expected one of "red", "green", got string "blue"',
            "point",
            {"color": "blue"},
        )
        self.assertCallError(
            "invalid-arguments",
            "`span`: end must not be before start",
            "lines",
            {"span": {"start": 3, "end": 1}},
        )
        self.assertEqual(self.plugin.call("lines", {"span": {"start": 1, "end": 3}}).text(), "2")
        self.assertCallError(
            "invalid-arguments", "arguments must be a JSON object, got array", "greet", "[]"
        )
        with self.assertRaises(CallError) as raised:
            self.plugin.call("greet", "{oops")
        self.assertEqual(raised.exception.kind, "invalid-arguments")
        self.assertIn("arguments are not JSON", raised.exception.message)

    def test_exceptions_map_to_call_errors(self) -> None:
        self.assertCallError("failed", "the file is empty", "fail", {"kind": "tool"})
        self.assertCallError("invalid-arguments", "use a positive count", "fail", {"kind": "args"})
        self.assertCallError("failed", "KeyError: 'missing'", "fail", {"kind": "bug"})
        logs = testing.take_logs()
        self.assertEqual(logs[0][0], "error")
        self.assertIn("Traceback", logs[0][1])
        self.assertEqual(self.plugin.call("fail", {"kind": "fine"}).text(), "ok")
        self.assertCallError(
            "failed", "tool bad_result returned array, expected an object", "bad_result", {}
        )
        with self.assertRaises(CallError) as raised:
            self.plugin.call("nan", {})
        self.assertIn("unusable result", raised.exception.message)

    def test_system_exit_is_reported_by_the_export_layer(self) -> None:
        # Plugin.call lets BaseException through; the WIT export turns it into `failed`.
        with self.assertRaises(SystemExit):
            self.plugin.call("fail", {"kind": "exit"})


class HostTest(unittest.TestCase):
    def setUp(self) -> None:
        testing.reset()

    def test_stand_ins(self) -> None:
        self.assertIsNone(capsule_sdk.config("api-key"))
        testing.set_config("api-key", "secret")
        self.assertEqual(capsule_sdk.config("api-key"), "secret")
        self.assertFalse(capsule_sdk.cancelled())
        testing.set_cancelled()
        self.assertTrue(capsule_sdk.cancelled())
        capsule_sdk.log("info", "hello")
        capsule_sdk.log("warning", "careful")
        self.assertEqual(testing.take_logs(), [("info", "hello"), ("warn", "careful")])
        self.assertEqual(testing.take_logs(), [])
        capsule_sdk.progress(1, 4, "reading")
        self.assertEqual(testing.take_progress(), [(1.0, 4, "reading")])
        with self.assertRaisesRegex(ValueError, "unknown log level"):
            capsule_sdk.log("loud", "x")
        self.assertIsNone(capsule_sdk.caller())
        testing.set_caller(capsule_sdk.Caller("alice", ("tools:call",)))
        self.assertEqual(capsule_sdk.caller(), capsule_sdk.Caller("alice", ("tools:call",)))
        self.assertTrue(capsule_sdk.caller().has_scope("tools:call"))
        self.assertFalse(capsule_sdk.caller().has_scope("tools"))
        testing.reset()
        self.assertIsNone(capsule_sdk.caller())

    def test_default_plugin_and_exports(self) -> None:
        @capsule_sdk.tool(name="sdk_test_echo", idempotent=True)
        def echo(text: str) -> str:
            """Echo."""
            return text

        try:
            self.assertEqual(
                capsule_sdk.default_plugin.call("sdk_test_echo", {"text": "x"}).text(), "x"
            )
            tools = capsule_sdk.exports()
            self.assertTrue(callable(tools().list_tools))
        finally:
            capsule_sdk.default_plugin._tools.pop("sdk_test_echo")


if __name__ == "__main__":
    unittest.main()
