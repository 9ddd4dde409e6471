/*
 * capsule_wit.c — the WIT side of the Capsule C SDK: implements the `tools` export of
 * world `capsule:plugin/plugin` on top of the tool table (CAPSULE_PLUGIN) and serves the
 * SDK's host functions with the `host` import, using wit-bindgen's C bindings
 * (bindings/plugin.h). Only built for wasm; capsule_tool.c has the logic.
 *
 * Memory: the canonical ABI hands the export's argument strings to us (freed here), and
 * frees what we return in the post-return functions of bindings/plugin.c, with free().
 * So everything returned is a fresh malloc() copy; the call's own memory is released by
 * capsule_call_end() before returning.
 */
#include "bindings/plugin.h"
#include "capsule_tool.h"

#include <stdlib.h>
#include <string.h>

/* wit-bindgen's plugin.c links in its `plugin_component_type.o` through this symbol. We
 * generate the bindings without that object file (capsule-componentize records the world's
 * types from the WIT instead), so the symbol is defined here. */
void __component_type_object_force_link_plugin(void);
void __component_type_object_force_link_plugin(void) {}

/* A malloc'd WIT string with a copy of `len` bytes (made valid UTF-8). Empty strings own
 * no memory, as the post-return functions expect. */
static plugin_string_t wit_string(const char *text, size_t len) {
    plugin_string_t s = {NULL, 0};
    if (!text || len == 0) {
        return s;
    }
    capsule_bytes clean = capsule_utf8_sanitize(text, len);
    if (!clean.ptr) {
        abort(); /* out of memory: trap, the host reports it */
    }
    if (clean.len) {
        plugin_string_dup_n(&s, clean.ptr, clean.len);
    }
    return s;
}

static plugin_string_t wit_cstring(const char *text) {
    return wit_string(text, text ? strlen(text) : 0);
}

static plugin_option_string_t wit_option(const char *text) {
    plugin_option_string_t o;
    memset(&o, 0, sizeof o);
    if (text) {
        o.is_some = true;
        o.val = wit_cstring(text);
    }
    return o;
}

static plugin_option_bool_t wit_hint(capsule_hint hint) {
    plugin_option_bool_t o = {hint == CAPSULE_YES || hint == CAPSULE_NO, hint == CAPSULE_YES};
    return o;
}

void exports_capsule_plugin_tools_list_tools(exports_capsule_plugin_tools_list_tool_t *ret) {
    const capsule_plugin *plugin = &capsule_plugin_definition;
    ret->ptr = NULL;
    ret->len = 0;
    if (plugin->count == 0) {
        return;
    }
    ret->ptr = calloc(plugin->count, sizeof(exports_capsule_plugin_tools_tool_t));
    if (!ret->ptr) {
        abort();
    }
    ret->len = plugin->count;
    for (size_t i = 0; i < plugin->count; i++) {
        const capsule_tool *tool = &plugin->tools[i];
        exports_capsule_plugin_tools_tool_t *out = &ret->ptr[i];
        out->name = wit_cstring(tool->name);
        out->title = wit_option(tool->title);
        out->description = wit_cstring(tool->description);
        out->input_schema = wit_cstring(capsule_tool_input_schema(tool));
        out->output_schema = wit_option(tool->output_schema);
        bool any = tool->read_only || tool->destructive || tool->idempotent || tool->open_world;
        out->annotations.is_some = any;
        out->annotations.val.read_only = wit_hint(tool->read_only);
        out->annotations.val.destructive = wit_hint(tool->destructive);
        out->annotations.val.idempotent = wit_hint(tool->idempotent);
        out->annotations.val.open_world = wit_hint(tool->open_world);
    }
    capsule_call_end();
}

bool exports_capsule_plugin_tools_call_tool(plugin_string_t *name, plugin_string_t *arguments,
                                            exports_capsule_plugin_tools_call_result_t *ret,
                                            exports_capsule_plugin_tools_call_error_t *err) {
    capsule_call_output output =
        capsule_call(&capsule_plugin_definition, (const char *)name->ptr, name->len,
                     (const char *)arguments->ptr, arguments->len);
    plugin_string_free(name);
    plugin_string_free(arguments);

    bool ok = output.status == CAPSULE_STATUS_OK;
    if (ok) {
        memset(ret, 0, sizeof *ret);
        if (output.text_count) {
            ret->content.ptr = calloc(output.text_count, sizeof(capsule_plugin_types_content_t));
            if (!ret->content.ptr) {
                abort();
            }
            ret->content.len = output.text_count;
            for (size_t i = 0; i < output.text_count; i++) {
                ret->content.ptr[i].tag = CAPSULE_PLUGIN_TYPES_CONTENT_TEXT;
                ret->content.ptr[i].val.text =
                    wit_string(output.texts[i].ptr, output.texts[i].len);
            }
        }
        if (output.structured.ptr) {
            ret->structured.is_some = true;
            ret->structured.val = wit_string(output.structured.ptr, output.structured.len);
        }
        ret->is_error = false;
    } else {
        memset(err, 0, sizeof *err);
        plugin_string_t message = wit_string(output.message.ptr, output.message.len);
        switch (output.status) {
        case CAPSULE_STATUS_UNKNOWN_TOOL:
            err->tag = CAPSULE_PLUGIN_TYPES_CALL_ERROR_UNKNOWN_TOOL;
            err->val.unknown_tool = message;
            break;
        case CAPSULE_STATUS_INVALID:
            err->tag = CAPSULE_PLUGIN_TYPES_CALL_ERROR_INVALID_ARGUMENTS;
            err->val.invalid_arguments = message;
            break;
        default:
            err->tag = CAPSULE_PLUGIN_TYPES_CALL_ERROR_FAILED;
            err->val.failed = message;
            break;
        }
    }
    capsule_call_end();
    return ok;
}

/* Host imports. The strings passed in are valid UTF-8 (capsule_tool.c made them so). */

void capsule_host_log(capsule_level level, const char *message, size_t len) {
    plugin_string_t s = {(uint8_t *)message, len};
    capsule_plugin_host_log((capsule_plugin_host_level_t)level, &s);
}

const char *capsule_host_config(const char *key, size_t key_len) {
    plugin_string_t k = {(uint8_t *)key, key_len};
    plugin_string_t value = {NULL, 0};
    if (!capsule_plugin_host_config(&k, &value)) {
        return NULL;
    }
    char *copy = capsule_strndup((const char *)value.ptr, value.len);
    plugin_string_free(&value);
    return copy;
}

void capsule_host_progress(double done, double total, const char *message, size_t len) {
    plugin_string_t m = {(uint8_t *)message, len};
    capsule_plugin_host_progress(done, total >= 0 ? &total : NULL, message ? &m : NULL);
}

bool capsule_host_cancelled(void) { return capsule_plugin_host_cancelled(); }

const capsule_principal *capsule_host_caller(void) {
    capsule_plugin_host_principal_t found;
    if (!capsule_plugin_host_caller(&found)) {
        return NULL;
    }
    capsule_principal *caller = capsule_alloc(sizeof *caller);
    const char **scopes = capsule_alloc((found.scopes.len ? found.scopes.len : 1) * sizeof *scopes);
    const char *name = capsule_strndup((const char *)found.name.ptr, found.name.len);
    bool copied = caller && scopes && name;
    for (size_t i = 0; copied && i < found.scopes.len; i++) {
        scopes[i] = capsule_strndup((const char *)found.scopes.ptr[i].ptr, found.scopes.ptr[i].len);
        copied = scopes[i] != NULL;
    }
    size_t count = found.scopes.len;
    capsule_plugin_host_principal_free(&found);
    if (!copied) {
        return NULL;
    }
    caller->name = name;
    caller->scopes = scopes;
    caller->scope_count = count;
    return caller;
}
