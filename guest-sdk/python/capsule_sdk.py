"""Write Capsule tool plugins as plain, annotated Python functions.

A tool is a decorated function::

    from capsule_sdk import tool, exports

    @tool(read_only=True, title="Count words")
    def word_count(text: str, limit: int | None = None) -> dict:
        '''Count the words of a text.

        Args:
            text: The text to count.
            limit: Stop counting after this many words.
        '''
        ...

    Tools = exports()   # the class componentize-py exports as the WIT `tools` interface

The SDK derives each tool's input JSON Schema from the parameters' annotations and defaults,
its description from the docstring, its output schema from the return annotation, checks and
converts the arguments, and maps exceptions to the WIT `call-error` cases. Nothing here needs
the generated `wit_world` bindings except `exports()`'s WIT conversion, so the module (and a
plugin's tools) also import and run on plain CPython for unit tests; see `testing`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import json
import re
import traceback
import types
import typing
from collections.abc import Callable
from typing import Any

try:  # Present only inside a component built by componentize-py.
    import wit_world.exports as _wit_exports
    from componentize_py_types import Err as _WitErr
    from wit_world.imports import host as _wit_host
    from wit_world.imports import types as _wit_types
except ImportError:  # Plain CPython: unit tests use the stand-ins in `testing`.
    _wit_exports = None
    _wit_host = None
    _wit_types = None
    _WitErr = None

__all__ = [
    "Audio",
    "CallError",
    "Caller",
    "Image",
    "InvalidArguments",
    "Plugin",
    "Resource",
    "ResourceLink",
    "Text",
    "ToolDefinition",
    "ToolError",
    "ToolOutput",
    "caller",
    "cancelled",
    "config",
    "default_plugin",
    "exports",
    "log",
    "progress",
    "testing",
    "tool",
]

# --------------------------------------------------------------------------------------------
# Errors


class ToolError(Exception):
    """Raise it from a tool to fail the call with `message`, which the model sees as is
    (WIT `call-error.failed`)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArguments(ToolError):
    """Raise it from a tool when the arguments are well-typed but unusable (e.g. an empty
    delimiter); the message should say what to change (WIT `call-error.invalid-arguments`)."""


class CallError(Exception):
    """Why a call produced no result: `kind` is `"unknown-tool"`, `"invalid-arguments"` or
    `"failed"`, like the WIT `call-error` variant. Raised by `Plugin.call`."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class _ArgumentError(Exception):
    """An argument that does not fit its parameter's type, with the path to it."""

    def __init__(self, path: str, message: str):
        super().__init__(f"`{path}`: {message}" if path else message)


# --------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass
class Text:
    """A text block."""

    text: str


@dataclasses.dataclass
class Image:
    """An image, e.g. `Image(png_bytes, "image/png")`."""

    data: bytes
    mime_type: str


@dataclasses.dataclass
class Audio:
    """An audio clip, e.g. `Audio(wav_bytes, "audio/wav")`."""

    data: bytes
    mime_type: str


@dataclasses.dataclass
class ResourceLink:
    """A link to a resource the client may fetch."""

    uri: str
    name: str
    description: str | None = None
    mime_type: str | None = None


@dataclasses.dataclass
class Resource:
    """A resource embedded in the result: give `text` or binary `data`."""

    uri: str
    text: str | None = None
    data: bytes | None = None
    mime_type: str | None = None


_CONTENT_TYPES = (Text, Image, Audio, ResourceLink, Resource)


@dataclasses.dataclass
class ToolOutput:
    """A full tool result: content blocks, optional structured content (a JSON object as a
    Python value), and `is_error` for a failure the model should see and act on."""

    content: list = dataclasses.field(default_factory=list)
    structured: Any = None
    is_error: bool = False

    def text(self) -> str:
        """The text blocks joined by newlines (handy in tests)."""
        return "\n".join(c.text for c in self.content if isinstance(c, Text))


@dataclasses.dataclass
class ToolDefinition:
    """What `list-tools` reports for one tool; the schemas are Python dicts."""

    name: str
    title: str | None
    description: str
    input_schema: dict
    output_schema: dict | None
    annotations: dict | None


# --------------------------------------------------------------------------------------------
# Docstrings

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Attributes|Fields|Returns|Return|Yields|Raises|"
    r"Examples?|Notes?|See Also|Warnings?)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^(\*{0,2}[A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?\s*:\s*(.*)$")
_BLOCK_LINE = re.compile(r"^(\s|[-*+>#|]|\d+[.)]\s|```)")


def _parse_doc(doc: str | None) -> tuple[str, dict[str, str]]:
    """Splits a Google-style docstring into (description, {name: description}) where the
    names come from an `Args:` (or `Attributes:`, `Fields:`, `Parameters:`) section."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    body: list[str] = []
    params: dict[str, str] = {}
    section = None
    current = None
    params_indent = 0
    for line in lines:
        header = _SECTION.match(line.strip()) if not line.startswith((" ", "\t")) else None
        if header:
            section = header.group(1)
            current = None
            continue
        if section is None:
            body.append(line)
        elif section in ("Args", "Arguments", "Parameters", "Params", "Attributes", "Fields"):
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            match = _ARG_LINE.match(stripped)
            if match and (current is None or indent <= params_indent):
                current = match.group(1).lstrip("*")
                params_indent = indent
                params[current] = match.group(3).strip()
            elif current and stripped:
                params[current] = (params[current] + " " + stripped).strip()
    return _join_paragraphs(body), params


def _join_paragraphs(lines: list[str]) -> str:
    """Joins hard-wrapped lines into paragraphs; lists, headings, quotes, tables, indented
    and fenced code keep their line breaks."""
    out: list[str] = []
    fenced = False
    for line in lines:
        if line.strip().startswith("```"):
            fenced = not fenced
            out.append(line)
            continue
        if (
            fenced
            or not line.strip()
            or not out
            or not out[-1].strip()
            or _BLOCK_LINE.match(line)
            or out[-1].strip().startswith("```")
        ):
            out.append(line)
        else:
            out[-1] = out[-1].rstrip() + " " + line.strip()
    return "\n".join(out).strip()


# --------------------------------------------------------------------------------------------
# Types -> JSON Schema, and JSON values -> typed arguments

_NONE_TYPE = type(None)
_REQUIRED_WRAPPERS = {typing.Required, typing.NotRequired}


def _strip_annotated(tp: Any) -> tuple[Any, str | None]:
    """`Annotated[T, "description", ...]` -> (T, "description")."""
    description = None
    while typing.get_origin(tp) is typing.Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, str) and description is None:
                description = meta
        tp = tp.__origin__
    if typing.get_origin(tp) in _REQUIRED_WRAPPERS:
        return _strip_annotated(typing.get_args(tp)[0])
    return tp, description


def _split_optional(tp: Any) -> tuple[Any, bool]:
    """`T | None` -> (T, True); anything else -> (tp, False)."""
    if _is_union(tp):
        args = typing.get_args(tp)
        if _NONE_TYPE in args:
            rest = tuple(a for a in args if a is not _NONE_TYPE)
            if len(rest) == 1:
                return rest[0], True
            return typing.Union[rest], True  # noqa: UP007 (built at runtime)
    return tp, False


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _is_object_type(tp: Any) -> bool:
    """A type whose values serialize to a JSON object."""
    tp = _strip_annotated(tp)[0]
    return (
        tp is dict
        or typing.get_origin(tp) is dict
        or typing.is_typeddict(tp)
        or _is_dataclass_type(tp)
    )


def _class_doc(cls: type) -> tuple[str, dict[str, str]]:
    doc = cls.__doc__
    if _is_dataclass_type(cls) and doc and doc.startswith(cls.__name__ + "("):
        doc = None  # the signature dataclasses writes when there is no docstring
    if doc and doc == getattr(dict, "__doc__", None):
        doc = None  # a TypedDict without docstring inherits dict's
    return _parse_doc(doc)


@dataclasses.dataclass
class _Field:
    name: str
    tp: Any
    required: bool
    default: Any
    description: str | None


@functools.cache
def _fields(cls: type) -> tuple[_Field, ...]:
    """The fields of a TypedDict or dataclass, with their docs. Cached: schemas are derived
    at build time, so the cache is in the snapshot every call starts from."""
    hints = typing.get_type_hints(cls, include_extras=True)
    _, docs = _class_doc(cls)
    fields = []
    if typing.is_typeddict(cls):
        for name, tp in hints.items():
            inner, meta_doc = _strip_annotated(tp)
            fields.append(
                _Field(name, inner, _td_required(cls, name, tp), None, meta_doc or docs.get(name))
            )
    else:
        for field in dataclasses.fields(cls):
            inner, meta_doc = _strip_annotated(hints[field.name])
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            default = field.default if field.default is not dataclasses.MISSING else None
            fields.append(
                _Field(
                    field.name, inner, not has_default, default, meta_doc or docs.get(field.name)
                )
            )
    return tuple(fields)


def _td_required(cls: type, name: str, hint: Any) -> bool:
    """Whether a TypedDict key is required. `__required_keys__` misses `NotRequired[...]`
    written as a string (`from __future__ import annotations`), so the hint decides first."""
    while True:
        origin = typing.get_origin(hint)
        if origin is typing.NotRequired:
            return False
        if origin is typing.Required:
            return True
        if origin is not typing.Annotated:
            return name in cls.__required_keys__
        hint = hint.__origin__


def _json_default(value: Any) -> tuple[bool, Any]:
    """(True, json value) when `value` can be shown as a schema default."""
    if value is None or value is inspect.Parameter.empty:
        return False, None
    try:
        plain = _to_json_value(value)
        json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    return True, plain


def _object_schema(props: typing.Sequence[_Field], strict: bool, description: str | None) -> dict:
    schema: dict[str, Any] = {"type": "object"}
    if description:
        schema["description"] = description
    properties = {}
    required = []
    for field in props:
        if strict and not field.required:
            # Input: an optional field is left out rather than sent as null.
            inner, _ = _split_optional(field.tp)
            prop = _schema(inner, strict)
            has_default, default = _json_default(field.default)
            if has_default:
                prop["default"] = default
        else:
            prop = _schema(field.tp, strict)
        if field.description:
            prop["description"] = field.description
        properties[field.name] = prop
        if field.required:
            required.append(field.name)
    schema["properties"] = properties
    if required:
        schema["required"] = required
    if strict:
        schema["additionalProperties"] = False
    return schema


_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _schema(tp: Any, strict: bool) -> dict:
    """The JSON Schema of values of `tp`. `strict` (input) forbids unknown object keys and
    makes optional fields non-nullable; output schemas keep `null` for `T | None`."""
    tp, description = _strip_annotated(tp)
    schema = _schema_of(tp, strict)
    if description:
        schema["description"] = description
    return schema


def _schema_of(tp: Any, strict: bool) -> dict:
    if tp is Any or tp is object:
        # Declared as what it is (any JSON value), not `{}`, which schema checkers such as the
        # MCP Inspector's --strict report as constraining nothing.
        return {"anyOf": [{"type": t} for t in _ANY_JSON_TYPES]}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if tp is _NONE_TYPE:
        return {"type": "null"}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(tp):
        inner, optional = _split_optional(tp)
        if optional:
            # `anyOf` rather than a `type` array such as ["number", "null"], which clients
            # that map schemas onto a single-`type` dialect (Gemini) reject.
            return {"anyOf": [_schema(inner, strict), {"type": "null"}]}
        return {"anyOf": [_schema(a, strict) for a in args]}
    if origin is typing.Literal:
        schema: dict[str, Any] = {"enum": list(args)}
        kinds = {_SCALARS.get(type(a)) for a in args}
        if len(kinds) == 1 and None not in kinds:
            schema["type"] = kinds.pop()
        return schema
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        schema = {"enum": values}
        kinds = {_SCALARS.get(type(v)) for v in values}
        if len(kinds) == 1 and None not in kinds:
            schema["type"] = kinds.pop()
        return schema
    if tp is list or origin is list:
        schema = {"type": "array"}
        if args:
            schema["items"] = _schema(args[0], strict)
        return schema
    if tp is dict or origin is dict:
        if args and args[0] is not str:
            raise TypeError(
                f"unsupported type {tp!r}: JSON object keys are strings, use dict[str, T]"
            )
        schema = {"type": "object"}
        if args:
            schema["additionalProperties"] = _schema(args[1], strict)
        return schema
    if typing.is_typeddict(tp) or _is_dataclass_type(tp):
        description, _ = _class_doc(tp)
        return _object_schema(_fields(tp), strict, description or None)
    raise TypeError(
        f"unsupported type {tp!r}: use str, int, float, bool, list[T], dict[str, T], "
        "T | None, Literal[...], an Enum, a TypedDict or a dataclass"
    )


_ANY_JSON_TYPES = ("object", "array", "string", "number", "boolean", "null")

_JSON_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    _NONE_TYPE: "null",
}


def _describe(value: Any) -> str:
    name = _JSON_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        shown = json.dumps(value)
        if len(shown) > 40:
            shown = shown[:37] + "..."
        return f"{name} {shown}"
    return name


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Checks a JSON value against `tp` and converts it (dataclasses, enums, floats)."""
    tp, _ = _strip_annotated(tp)
    if tp is Any or tp is object:
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        raise _ArgumentError(path, f"expected a string, got {_describe(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _ArgumentError(path, f"expected a boolean, got {_describe(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _ArgumentError(path, f"expected an integer, got {_describe(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _ArgumentError(path, f"expected a number, got {_describe(value)}")
    if tp is _NONE_TYPE:
        if value is None:
            return None
        raise _ArgumentError(path, f"expected null, got {_describe(value)}")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if _is_union(tp):
        inner, optional = _split_optional(tp)
        if value is None and optional:
            return None
        if not _is_union(inner):
            return _convert(value, inner, path)
        candidates = typing.get_args(inner)
        for candidate in candidates:
            try:
                return _convert(value, candidate, path)
            except _ArgumentError:
                continue
        allowed = " or ".join(_type_name(c) for c in candidates)
        raise _ArgumentError(path, f"expected {allowed}, got {_describe(value)}")
    if origin is typing.Literal:
        for allowed in args:
            if value == allowed and type(value) is type(allowed):
                return allowed
        options = ", ".join(json.dumps(a) for a in args)
        raise _ArgumentError(path, f"expected one of {options}, got {_describe(value)}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if value == member.value and type(value) is type(member.value):
                return member
        options = ", ".join(json.dumps(m.value) for m in tp)
        raise _ArgumentError(path, f"expected one of {options}, got {_describe(value)}")
    if tp is list or origin is list:
        if not isinstance(value, list):
            raise _ArgumentError(path, f"expected an array, got {_describe(value)}")
        if not args:
            return value
        return [_convert(item, args[0], f"{path}[{i}]") for i, item in enumerate(value)]
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise _ArgumentError(path, f"expected an object, got {_describe(value)}")
        if not args:
            return value
        return {k: _convert(v, args[1], _join(path, k)) for k, v in value.items()}
    if typing.is_typeddict(tp) or _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise _ArgumentError(path, f"expected an object, got {_describe(value)}")
        converted = _convert_fields(value, _fields(tp), path)
        if typing.is_typeddict(tp):
            return converted
        try:
            return tp(**converted)
        except (TypeError, ValueError, ToolError) as error:  # e.g. checks in __post_init__
            raise _ArgumentError(path, str(error)) from None
    raise _ArgumentError(path, f"cannot convert to {tp!r}")


def _type_name(tp: Any) -> str:
    schema = _schema(tp, strict=True)
    kind = schema.get("type")
    return kind if isinstance(kind, str) else getattr(tp, "__name__", repr(tp))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert_fields(value: dict, fields: typing.Sequence[_Field], path: str) -> dict:
    known = {f.name for f in fields}
    for key in value:
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            what = "field" if path else "argument"
            raise _ArgumentError(_join(path, key), f"unknown {what} (allowed: {allowed})")
    converted = {}
    for field in fields:
        if field.name in value:
            converted[field.name] = _convert(value[field.name], field.tp, _join(path, field.name))
        elif field.required:
            what = "field" if path else "argument"
            raise _ArgumentError(_join(path, field.name), f"missing required {what}")
    return converted


def _to_json_value(value: Any) -> Any:
    """A tool's return value as plain JSON data (dataclasses, enums and tuples converted)."""
    if isinstance(value, enum.Enum):
        return _to_json_value(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# --------------------------------------------------------------------------------------------
# Tools and the plugin

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ANNOTATIONS = ("read_only", "destructive", "idempotent", "open_world")


class _Tool:
    """A registered tool: its definition and how to call it."""

    def __init__(self, fn: Callable, name: str | None, title: str | None, flags: dict):
        self.fn = fn
        self.name = name or fn.__name__
        where = f"tool {self.name} ({fn.__module__}.{fn.__qualname__})"
        if not _NAME.match(self.name):
            raise ValueError(f"{where}: the name must match ^[a-zA-Z0-9_-]{{1,64}}$")
        description, param_docs = _parse_doc(fn.__doc__)
        if not description:
            raise ValueError(
                f"{where} needs a docstring: it is the description the model reads to decide "
                "when to call the tool"
            )
        hints = typing.get_type_hints(fn, include_extras=True)
        self.fields: list[_Field] = []
        # `x: T | None` without a default is optional and gets None when left out.
        self.none_defaults: list[str] = []
        for param in inspect.signature(fn).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise TypeError(f"{where}: parameter {param.name} must be a plain named parameter")
            if param.name not in hints:
                raise TypeError(f"{where}: parameter {param.name} needs a type annotation")
            tp, meta_doc = _strip_annotated(hints[param.name])
            has_default = param.default is not inspect.Parameter.empty
            _, optional = _split_optional(tp)
            if optional and not has_default:
                self.none_defaults.append(param.name)
            self.fields.append(
                _Field(
                    param.name,
                    tp,
                    not (has_default or optional),
                    param.default if has_default else None,
                    meta_doc or param_docs.get(param.name),
                )
            )
        try:
            input_schema = _object_schema(self.fields, strict=True, description=None)
            returns = _strip_annotated(hints.get("return", Any))[0]
            output_schema = None
            if typing.is_typeddict(returns) or _is_dataclass_type(returns):
                output_schema = _schema(returns, strict=False)
        except TypeError as error:
            raise TypeError(f"{where}: {error}") from None
        self.returns_object = _is_object_type(returns)
        annotations = {k: v for k, v in flags.items() if v is not None}
        self.definition = ToolDefinition(
            name=self.name,
            title=title,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            annotations=annotations or None,
        )

    def run(self, arguments: Any) -> ToolOutput:
        if not isinstance(arguments, dict):
            raise CallError(
                "invalid-arguments", f"arguments must be a JSON object, got {_describe(arguments)}"
            )
        try:
            kwargs = _convert_fields(arguments, self.fields, "")
        except _ArgumentError as error:
            raise CallError("invalid-arguments", str(error)) from None
        for name in self.none_defaults:
            kwargs.setdefault(name, None)
        try:
            value = self.fn(**kwargs)
        except InvalidArguments as error:
            raise CallError("invalid-arguments", error.message) from None
        except ToolError as error:
            raise CallError("failed", error.message) from None
        except Exception as error:  # noqa: BLE001 - a bug: report it, never trap
            log("error", f"tool {self.name} raised:\n{traceback.format_exc().rstrip()}")
            raise CallError("failed", _exception_message(error)) from None
        return self._output(value)

    def _output(self, value: Any) -> ToolOutput:
        if isinstance(value, ToolOutput):
            return value
        if isinstance(value, _CONTENT_TYPES):
            return ToolOutput([value])
        if isinstance(value, list) and value and all(isinstance(v, _CONTENT_TYPES) for v in value):
            return ToolOutput(list(value))
        if isinstance(value, str):
            return ToolOutput([Text(value)])
        if value is None and not self.returns_object:
            return ToolOutput([])
        try:
            plain = _to_json_value(value)
            text = json.dumps(plain, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise CallError(
                "failed", f"tool {self.name} returned an unusable result: {error}"
            ) from None
        if isinstance(plain, dict):
            return ToolOutput([Text(text)], structured=plain)
        if self.definition.output_schema is not None or self.returns_object:
            raise CallError(
                "failed", f"tool {self.name} returned {_describe(plain)}, expected an object"
            )
        return ToolOutput([Text(text)])


def _exception_message(error: BaseException) -> str:
    message = str(error)
    kind = type(error).__name__
    return f"{kind}: {message}" if message else kind


class Plugin:
    """A set of tools. The module-level `tool` decorator registers into `default_plugin`;
    create your own `Plugin()` to keep several sets apart (e.g. in tests)."""

    def __init__(self) -> None:
        self._tools: dict[str, _Tool] = {}

    def tool(
        self,
        fn: Callable | None = None,
        *,
        name: str | None = None,
        title: str | None = None,
        read_only: bool | None = None,
        destructive: bool | None = None,
        idempotent: bool | None = None,
        open_world: bool | None = None,
    ) -> Any:
        """Registers a function as a tool; usable bare (`@tool`) or with options
        (`@tool(read_only=True, title="...")`). Returns the function unchanged."""

        def register(fn: Callable) -> Callable:
            flags = {
                "read_only": read_only,
                "destructive": destructive,
                "idempotent": idempotent,
                "open_world": open_world,
            }
            entry = _Tool(fn, name, title, flags)
            if entry.name in self._tools:
                raise ValueError(f"two tools are named {entry.name}")
            self._tools[entry.name] = entry
            return fn

        return register(fn) if fn is not None else register

    def definitions(self) -> list[ToolDefinition]:
        """What `list-tools` reports, in registration order."""
        return [t.definition for t in self._tools.values()]

    def call(self, name: str, arguments: str | dict) -> ToolOutput:
        """Runs tool `name` with `arguments` (JSON text or a dict) exactly as the host's
        `call-tool` does; raises `CallError` instead of returning an error."""
        entry = self._tools.get(name)
        if entry is None:
            raise CallError("unknown-tool", name)
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError as error:
                raise CallError("invalid-arguments", f"arguments are not JSON: {error}") from None
        return entry.run(arguments)

    def exports(self) -> type:
        """The class to bind to the name `Tools` in the app module, which componentize-py
        exports as the WIT `tools` interface: `Tools = plugin.exports()`."""
        plugin = self
        base = _wit_exports.Tools if _wit_exports is not None else object

        class Tools(base):  # type: ignore[misc, valid-type]
            """The WIT `tools` export, backed by a `Plugin`."""

            def list_tools(self) -> list:
                return [_wit_tool(d) for d in plugin.definitions()]

            def call_tool(self, name: str, arguments: str) -> Any:
                try:
                    return _wit_result(plugin.call(name, arguments))
                except CallError as error:
                    raise _wit_error(error) from None
                except BaseException as error:  # noqa: BLE001 - never trap
                    raise _wit_error(CallError("failed", _exception_message(error))) from None

        return Tools


default_plugin = Plugin()
"""The plugin the module-level `tool` decorator registers into."""


def tool(fn: Callable | None = None, **options: Any) -> Any:
    """Registers a function as a tool of `default_plugin`. Options: `name`, `title`,
    and the MCP hints `read_only`, `destructive`, `idempotent`, `open_world` (bools)."""
    return default_plugin.tool(fn, **options)


def exports(plugin: Plugin | None = None) -> type:
    """The WIT `tools` export class for `plugin` (default: `default_plugin`). In `app.py`:
    `Tools = exports()` after the tools are defined."""
    return (plugin or default_plugin).exports()


# --------------------------------------------------------------------------------------------
# WIT conversions (only used inside the component)


def _wit_tool(d: ToolDefinition) -> Any:
    annotations = None
    if d.annotations is not None:
        annotations = _wit_types.ToolAnnotations(*(d.annotations.get(k) for k in _ANNOTATIONS))
    return _wit_types.Tool(
        name=d.name,
        title=d.title,
        description=d.description,
        input_schema=json.dumps(d.input_schema),
        output_schema=json.dumps(d.output_schema) if d.output_schema is not None else None,
        annotations=annotations,
    )


def _wit_content(c: Any) -> Any:
    t = _wit_types
    if isinstance(c, Text):
        return t.Content_Text(c.text)
    if isinstance(c, Image):
        return t.Content_Image(t.Blob(bytes(c.data), c.mime_type))
    if isinstance(c, Audio):
        return t.Content_Audio(t.Blob(bytes(c.data), c.mime_type))
    if isinstance(c, ResourceLink):
        return t.Content_ResourceLink(t.Link(c.uri, c.name, c.description, c.mime_type))
    if isinstance(c, Resource):
        if c.data is not None:
            body = t.ResourceBody_Binary(bytes(c.data))
        else:
            body = t.ResourceBody_Text(c.text or "")
        return t.Content_Resource(t.Embedded(c.uri, c.mime_type, body))
    raise CallError("failed", f"not a content block: {type(c).__name__}")


def _wit_result(output: ToolOutput) -> Any:
    structured = None
    if output.structured is not None:
        structured = json.dumps(_to_json_value(output.structured), ensure_ascii=False)
    return _wit_types.CallResult(
        content=[_wit_content(c) for c in output.content],
        structured=structured,
        is_error=output.is_error,
    )


def _wit_error(error: CallError) -> Exception:
    t = _wit_types
    case = {
        "unknown-tool": t.CallError_UnknownTool,
        "invalid-arguments": t.CallError_InvalidArguments,
    }.get(error.kind, t.CallError_Failed)
    return _WitErr(case(error.message))


# --------------------------------------------------------------------------------------------
# Host imports

_LEVELS = ("trace", "debug", "info", "warn", "error")


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who called the current tool: the principal authentication established for the HTTP
    request (never its token)."""

    name: str
    """A static token's name, or a JWT's `sub`."""
    scopes: tuple[str, ...] = ()
    """The OAuth scopes its credential grants."""

    def has_scope(self, scope: str) -> bool:
        """Whether the credential grants `scope` exactly."""
        return scope in self.scopes


class testing:
    """Native stand-ins for the host imports, so tools run under plain CPython:
    `testing.set_config(key, value)`, `testing.set_cancelled(bool)`,
    `testing.set_caller(Caller | None)`, `testing.take_logs()`
    -> [(level, message)], `testing.take_progress()` -> [(done, total, message)],
    `testing.reset()`."""

    config: typing.ClassVar[dict[str, str]] = {}
    is_cancelled: typing.ClassVar[bool] = False
    caller: typing.ClassVar[Caller | None] = None
    logs: typing.ClassVar[list[tuple[str, str]]] = []
    progress: typing.ClassVar[list[tuple[float, float | None, str | None]]] = []

    @classmethod
    def set_config(cls, key: str, value: str | None) -> None:
        """Sets (or with None removes) what `config(key)` returns."""
        if value is None:
            cls.config.pop(key, None)
        else:
            cls.config[key] = value

    @classmethod
    def set_cancelled(cls, value: bool = True) -> None:
        """Sets what `cancelled()` returns."""
        cls.is_cancelled = value

    @classmethod
    def set_caller(cls, value: Caller | None) -> None:
        """Sets what `caller()` returns."""
        cls.caller = value

    @classmethod
    def take_logs(cls) -> list[tuple[str, str]]:
        """The log lines written since the last call, oldest first."""
        taken, cls.logs = cls.logs, []
        return taken

    @classmethod
    def take_progress(cls) -> list[tuple[float, float | None, str | None]]:
        """The progress reports since the last call, oldest first."""
        taken, cls.progress = cls.progress, []
        return taken

    @classmethod
    def reset(cls) -> None:
        """Forgets config, cancellation, caller, logs and progress."""
        cls.config, cls.is_cancelled, cls.logs, cls.progress = {}, False, [], []
        cls.caller = None


def log(level: str, message: str) -> None:
    """Writes a line to the host's log: level is "trace", "debug", "info", "warn" or "error"."""
    level = "warn" if level == "warning" else level
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")
    if _wit_host is None:
        testing.logs.append((level, message))
        return
    _wit_host.log(_wit_types.Level[level.upper()], message)


def progress(done: float, total: float | None = None, message: str | None = None) -> None:
    """Reports progress of the current call to the client (if it asked for progress)."""
    if _wit_host is None:
        testing.progress.append((float(done), total, message))
        return
    _wit_host.progress(float(done), None if total is None else float(total), message)


def cancelled() -> bool:
    """True once the client has cancelled the current call; long loops should stop."""
    if _wit_host is None:
        return testing.is_cancelled
    return _wit_host.cancelled()


def config(key: str) -> str | None:
    """A per-plugin setting, or a secret granted to this plugin, by key."""
    if _wit_host is None:
        return testing.config.get(key)
    return _wit_host.config(key)


def caller() -> Caller | None:
    """The authenticated caller of the current call. None over stdio, on HTTP without
    `[auth]`, and unless the operator granted the plugin `caller-identity = true`."""
    if _wit_host is None:
        return testing.caller
    principal = _wit_host.caller()
    if principal is None:
        return None
    return Caller(principal.name, tuple(principal.scopes))
