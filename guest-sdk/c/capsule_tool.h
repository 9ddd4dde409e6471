/*
 * capsule_tool.h — write Capsule tool plugins in C.
 *
 * A plugin is a table of tools; each tool is a function that reads its (already
 * host-validated) JSON arguments and writes a result:
 *
 *     static capsule_result greet(const capsule_args *args, capsule_out *out) {
 *         const char *name = capsule_arg_string(args, "name", NULL);
 *         if (!name) return capsule_invalid(out, "`name` is required");
 *         return capsule_textf(out, "Hello, %s!", name);
 *     }
 *
 *     static const capsule_tool TOOLS[] = {
 *         { .name = "greet", .description = "Greet someone by name.",
 *           .input_schema = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"}},"
 *                           "\"required\":[\"name\"],\"additionalProperties\":false}",
 *           .read_only = CAPSULE_YES, .run = greet },
 *     };
 *     CAPSULE_PLUGIN(TOOLS)
 *
 * Memory: everything the SDK hands to a tool (argument strings, JSON writers) and every
 * string a tool passes to the SDK is copied or owned by the SDK, and freed when the call
 * ends. Tool code never frees SDK memory. See README.md.
 */
#ifndef CAPSULE_TOOL_H
#define CAPSULE_TOOL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CAPSULE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CAPSULE_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------------------------------
 * Tools
 * ------------------------------------------------------------------------------------- */

/* What a tool function returns; use the return value of capsule_text(), capsule_fail()… */
typedef enum capsule_result {
    /* The tool produced a result (text blocks and/or structured JSON). */
    CAPSULE_OK = 0,
    /* The tool failed: WIT `failed`, shown to the model as an error. */
    CAPSULE_FAILED,
    /* The arguments were unusable: WIT `invalid-arguments`. */
    CAPSULE_INVALID,
} capsule_result;

/* An MCP tool annotation: not stated (the default, 0), true, or false. */
typedef enum capsule_hint {
    CAPSULE_UNSET = 0,
    CAPSULE_YES = 1,
    CAPSULE_NO = 2,
} capsule_hint;

/* The parsed argument object of one call (opaque). */
typedef struct capsule_args capsule_args;
/* The result being built by one call (opaque). */
typedef struct capsule_out capsule_out;
/* A JSON writer (opaque). */
typedef struct capsule_json capsule_json;

/* One tool of the plugin. Only `name`, `description` and `run` are required. */
typedef struct capsule_tool {
    /* Name within the plugin, `^[a-zA-Z0-9_-]{1,64}$`; exposed as `<plugin>_<name>`. */
    const char *name;
    /* Human-friendly title, or NULL. */
    const char *title;
    /* What the tool does, written for a model deciding whether to call it. */
    const char *description;
    /* JSON Schema (type "object") of the arguments as JSON text. NULL means no arguments:
     * {"type":"object","properties":{},"additionalProperties":false}. */
    const char *input_schema;
    /* JSON Schema of the structured result, or NULL. When set, the tool must return its
     * result with capsule_structured(). */
    const char *output_schema;
    /* Annotations for MCP clients. */
    capsule_hint read_only;
    capsule_hint destructive;
    capsule_hint idempotent;
    capsule_hint open_world;
    /* The tool itself. */
    capsule_result (*run)(const capsule_args *args, capsule_out *out);
} capsule_tool;

/* The plugin's tool table (defined by CAPSULE_PLUGIN). */
typedef struct capsule_plugin {
    const capsule_tool *tools;
    size_t count;
} capsule_plugin;

/* JSON written as plain tokens, for schemas: CAPSULE_JSON({"type": "string"}) is the C
 * string "{\"type\": \"string\"}". The preprocessor adds the C escapes, keeps JSON
 * escapes inside strings as written, and turns runs of whitespace between tokens into one
 * space. Parentheses outside JSON strings must balance (they always do in JSON). */
#define CAPSULE_JSON(...) #__VA_ARGS__

/* Defines the plugin's tool table; use exactly once, at file scope, with an array. */
#define CAPSULE_PLUGIN(table)                                                                  \
    const capsule_plugin capsule_plugin_definition = {(table), sizeof(table) / sizeof((table)[0])};

extern const capsule_plugin capsule_plugin_definition;

/* ---------------------------------------------------------------------------------------
 * Arguments: look up the top-level keys of the argument object.
 * Every getter returns "absent" (NULL / false) when the key is missing, is null, or holds
 * another type. Strings are decoded (escapes resolved, UTF-8), NUL-terminated, and live
 * until the call ends; `len` (may be NULL) receives the length in bytes, which matters
 * only when the text contains "\u0000".
 * ------------------------------------------------------------------------------------- */

/* True when `key` is present (with any value, even null). */
bool capsule_arg_has(const capsule_args *args, const char *key);
/* The string value of `key`, or NULL. */
const char *capsule_arg_string(const capsule_args *args, const char *key, size_t *len);
/* The integer value of `key` (also 3.0 or 1e3), false if absent, fractional or out of range. */
bool capsule_arg_int(const capsule_args *args, const char *key, int64_t *value);
/* The numeric value of `key`, false if absent. */
bool capsule_arg_number(const capsule_args *args, const char *key, double *value);
/* The boolean value of `key`, false if absent. */
bool capsule_arg_bool(const capsule_args *args, const char *key, bool *value);
/* The JSON text of `key`'s value as sent (for arrays and objects), not NUL-terminated. */
const char *capsule_arg_raw(const capsule_args *args, const char *key, size_t *len);

/* Convenience forms with a default for absent keys. */
const char *capsule_arg_string_or(const capsule_args *args, const char *key, const char *fallback);
int64_t capsule_arg_int_or(const capsule_args *args, const char *key, int64_t fallback);
double capsule_arg_number_or(const capsule_args *args, const char *key, double fallback);
bool capsule_arg_bool_or(const capsule_args *args, const char *key, bool fallback);

/* ---------------------------------------------------------------------------------------
 * Results. Each returns the capsule_result to return from the tool, so a tool can end with
 * `return capsule_text(out, ...);` or `return capsule_fail(out, ...);`.
 * ------------------------------------------------------------------------------------- */

/* Adds a text block (copied). Several calls give several blocks. */
capsule_result capsule_text(capsule_out *out, const char *text);
/* Adds a text block of `len` bytes (may contain NUL bytes). */
capsule_result capsule_text_n(capsule_out *out, const char *text, size_t len);
/* Adds a printf-formatted text block. */
capsule_result capsule_textf(capsule_out *out, const char *format, ...) CAPSULE_PRINTF(2, 3);

/* The writer of the structured result (an object matching the tool's output schema).
 * Write one complete JSON object into it, then return CAPSULE_OK (or capsule_done(out)).
 * Unless the tool also adds text blocks, the same JSON is sent as the text content. */
capsule_json *capsule_structured(capsule_out *out);

/* The tool failed (WIT `failed`): the printf-formatted message is shown to the model. */
capsule_result capsule_fail(capsule_out *out, const char *format, ...) CAPSULE_PRINTF(2, 3);
/* The arguments are unusable (WIT `invalid-arguments`): say what to change. */
capsule_result capsule_invalid(capsule_out *out, const char *format, ...) CAPSULE_PRINTF(2, 3);
/* CAPSULE_OK, to end a tool that wrote a structured result: `return capsule_done(out);`. */
capsule_result capsule_done(capsule_out *out);

/* ---------------------------------------------------------------------------------------
 * JSON writer: values are separated with commas automatically; a value inside an object
 * must follow capsule_json_key(). Strings are escaped as JSON requires (quotes,
 * backslashes, control characters; invalid UTF-8 becomes U+FFFD). Misuse (a value without
 * a key in an object, unbalanced ends) is recorded and makes the call fail with a message
 * naming the problem, instead of producing broken JSON.
 * ------------------------------------------------------------------------------------- */

capsule_json *capsule_json_new(void); /* a standalone writer, freed when the call ends */
void capsule_json_object_begin(capsule_json *json);
void capsule_json_object_end(capsule_json *json);
void capsule_json_array_begin(capsule_json *json);
void capsule_json_array_end(capsule_json *json);
void capsule_json_key(capsule_json *json, const char *key);
void capsule_json_string(capsule_json *json, const char *value); /* NULL writes null */
void capsule_json_string_n(capsule_json *json, const char *value, size_t len);
void capsule_json_int(capsule_json *json, int64_t value);
void capsule_json_uint(capsule_json *json, uint64_t value);
void capsule_json_number(capsule_json *json, double value); /* NaN and infinities → null */
void capsule_json_bool(capsule_json *json, bool value);
void capsule_json_null(capsule_json *json);
/* Writes already-serialized JSON text as one value (not checked). */
void capsule_json_raw(capsule_json *json, const char *text, size_t len);
/* The text written so far (NUL-terminated), or NULL after misuse or out of memory;
 * `len` (may be NULL) receives its length. */
const char *capsule_json_text(const capsule_json *json, size_t *len);
/* NULL, or what went wrong (misuse, unfinished value, out of memory). */
const char *capsule_json_error(const capsule_json *json);

/* ---------------------------------------------------------------------------------------
 * Host imports
 * ------------------------------------------------------------------------------------- */

typedef enum capsule_level {
    CAPSULE_TRACE = 0,
    CAPSULE_DEBUG,
    CAPSULE_INFO,
    CAPSULE_WARN,
    CAPSULE_ERROR,
} capsule_level;

/* Writes a printf-formatted line to the host's log, tagged with the plugin's name. */
void capsule_log(capsule_level level, const char *format, ...) CAPSULE_PRINTF(2, 3);
/* The plugin setting (or granted secret) `key`, or NULL. Lives until the call ends. */
const char *capsule_config(const char *key);
/* Reports progress to the client, if it asked; `total` < 0 means unknown; `message` may be
 * NULL. */
void capsule_progress(double done, double total, const char *message);
/* True once the client has cancelled the current call. */
bool capsule_cancelled(void);

/* Who called, as authentication established it. Never the caller's token. */
typedef struct capsule_principal {
    /* The principal's name: a static token's name, or a JWT's `sub`. */
    const char *name;
    /* The OAuth scopes its credential grants (`scope_count` NUL-terminated strings). */
    const char *const *scopes;
    size_t scope_count;
} capsule_principal;

/* The authenticated caller of the current call, or NULL: over stdio, on HTTP without
 * [auth], and unless the plugin's policy grants `caller-identity`. Lives until the call
 * ends. */
const capsule_principal *capsule_caller(void);
/* True when the current call has a caller (see capsule_caller) holding `scope`. */
bool capsule_caller_has_scope(const char *scope);

/* ---------------------------------------------------------------------------------------
 * Memory for the current call: freed when the call ends. Returns NULL when out of memory.
 * ------------------------------------------------------------------------------------- */

void *capsule_alloc(size_t size);
/* A NUL-terminated copy of `len` bytes of `text`. */
char *capsule_strndup(const char *text, size_t len);

/* ---------------------------------------------------------------------------------------
 * Dispatch, used by the WIT glue (capsule_wit.c) and by native tests.
 * ------------------------------------------------------------------------------------- */

typedef enum capsule_status {
    CAPSULE_STATUS_OK = 0,
    CAPSULE_STATUS_UNKNOWN_TOOL,
    CAPSULE_STATUS_INVALID,
    CAPSULE_STATUS_FAILED,
} capsule_status;

/* A byte string (not NUL-terminated unless said so). */
typedef struct capsule_bytes {
    const char *ptr;
    size_t len;
} capsule_bytes;

/* What one call produced; valid until capsule_call_end(). */
typedef struct capsule_call_output {
    capsule_status status;
    /* The error message (status other than OK). */
    capsule_bytes message;
    /* The text blocks (status OK). */
    const capsule_bytes *texts;
    size_t text_count;
    /* The structured JSON, ptr NULL when none (status OK). */
    capsule_bytes structured;
} capsule_call_output;

/* Runs tool `name` of `plugin` with the JSON argument text `arguments`. */
capsule_call_output capsule_call(const capsule_plugin *plugin, const char *name, size_t name_len,
                                 const char *arguments, size_t arguments_len);
/* Frees all memory of the current call. */
void capsule_call_end(void);

/* The input schema to report for `tool` (its own, or the no-arguments schema). */
const char *capsule_tool_input_schema(const capsule_tool *tool);

/* True when the `len` bytes at `text` are valid UTF-8. Text the SDK sends to the host is
 * made valid by replacing invalid sequences with U+FFFD. */
bool capsule_utf8_valid(const char *text, size_t len);
/* A NUL-terminated copy of `text` (call memory) with invalid UTF-8 replaced by U+FFFD. */
capsule_bytes capsule_utf8_sanitize(const char *text, size_t len);

/* Host import backends: implemented by capsule_wit.c in the component, by the tests in native
 * builds. Strings are UTF-8 and NUL-terminated; capsule_host_config returns call memory
 * (capsule_alloc) or NULL. */
void capsule_host_log(capsule_level level, const char *message, size_t len);
const char *capsule_host_config(const char *key, size_t key_len);
void capsule_host_progress(double done, double total, const char *message, size_t len);
bool capsule_host_cancelled(void);
/* The caller (call memory, via capsule_alloc) or NULL. */
const capsule_principal *capsule_host_caller(void);

#ifdef __cplusplus
}
#endif

#endif /* CAPSULE_TOOL_H */
