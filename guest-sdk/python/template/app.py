"""`{{name}}`: a Capsule tool plugin written in Python.

Every function decorated with `@tool` becomes an MCP tool named `{{name}}_<function>`.
See README.md for the build command.
"""

from capsule_sdk import InvalidArguments, exports, tool


@tool(title="Greet", read_only=True, idempotent=True)
def greet(name: str, excited: bool = False) -> str:
    """Greet someone by name.

    Args:
        name: Who to greet, e.g. "Ada".
        excited: End with an exclamation mark instead of a full stop.
    """
    if not name.strip():
        raise InvalidArguments("name must not be empty")
    return f"Hello, {name.strip()}{'!' if excited else '.'}"


# componentize-py exports the class bound to `Tools` as the WIT `tools` interface.
Tools = exports()
