/* {{name}}: a Capsule tool plugin written in C. `make` builds {{name}}.wasm; the tools
 * appear in MCP clients as {{name}}_<tool>. See README.md. */
#include "capsule_tool.h"

#include <string.h>

static capsule_result greet(const capsule_args *args, capsule_out *out) {
    /* The host has checked the arguments against input_schema: `name` is a string. */
    const char *name = capsule_arg_string(args, "name", NULL);
    if (!name || strlen(name) == 0) {
        return capsule_invalid(out, "`name` must not be empty");
    }
    capsule_log(CAPSULE_DEBUG, "greeting %s", name);
    return capsule_textf(out, "Hello, %s!", name);
}

static const capsule_tool TOOLS[] = {
    {
        .name = "greet",
        .title = "Greet",
        .description = "Greet someone by name. Returns a one-line greeting.",
        .input_schema = CAPSULE_JSON({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "Who to greet, e.g. Ada."}
            },
            "required": ["name"],
            "additionalProperties": false
        }),
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = greet,
    },
};

CAPSULE_PLUGIN(TOOLS)
