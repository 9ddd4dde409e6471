/*
 * Native unit tests of the C SDK (capsule_tool.c): the argument reader (including malformed
 * and mutated input), the JSON writer, results and dispatch, and the host function wrappers.
 * Built with gcc under AddressSanitizer + UBSan by `cargo xtask test` (a compiler without them
 * is an error: the mutation tests rely on them):
 *
 *     gcc -std=c11 -Wall -Wextra -Werror -fsanitize=address,undefined -I guest-sdk/c \
 *         guest-sdk/c/capsule_tool.c guest-sdk/c/tests/test_capsule.c -lm -o test_capsule
 *
 * Prints "N passed, M failed" and exits non-zero on any failure.
 */
#include "capsule_tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static const char *current;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (cond) {                                                                            \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            fprintf(stderr, "FAIL %s (%s:%d): %s\n", current, __FILE__, __LINE__, #cond);      \
        }                                                                                      \
    } while (0)

#define CHECK_STR(actual, expected)                                                            \
    do {                                                                                       \
        const char *a_ = (actual);                                                             \
        const char *e_ = (expected);                                                           \
        if (a_ && e_ && strcmp(a_, e_) == 0) {                                                 \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            fprintf(stderr, "FAIL %s (%s:%d): %s\n  got:      %s\n  expected: %s\n", current,  \
                    __FILE__, __LINE__, #actual, a_ ? a_ : "(null)", e_ ? e_ : "(null)");      \
        }                                                                                      \
    } while (0)

/* ---------------------------------------------------------------------------------------
 * Host stand-ins
 * ------------------------------------------------------------------------------------- */

static char last_log[256];
static capsule_level last_level;
static double last_done, last_total;
static char last_progress[64];
static bool cancelled_flag;

void capsule_host_log(capsule_level level, const char *message, size_t len) {
    last_level = level;
    snprintf(last_log, sizeof last_log, "%.*s", (int)len, message);
}

const char *capsule_host_config(const char *key, size_t key_len) {
    if (key_len == 7 && memcmp(key, "api-key", 7) == 0) {
        return capsule_strndup("s3cret", 6);
    }
    return NULL;
}

void capsule_host_progress(double done, double total, const char *message, size_t len) {
    last_done = done;
    last_total = total;
    snprintf(last_progress, sizeof last_progress, "%s",
             message ? capsule_strndup(message, len) : "(none)");
}

bool capsule_host_cancelled(void) { return cancelled_flag; }

static const char *const caller_scopes[] = {"tools:call", "files:read"};
static const capsule_principal alice = {"alice", caller_scopes, 2};
static const capsule_principal *current_caller;

const capsule_principal *capsule_host_caller(void) { return current_caller; }

/* ---------------------------------------------------------------------------------------
 * A test plugin: "echo" reports what the reader sees, the others exercise results.
 * ------------------------------------------------------------------------------------- */

/* Reads every kind of value of key `k` and describes it, so tests can compare one string. */
static capsule_result probe(const capsule_args *args, capsule_out *out) {
    const char *key = capsule_arg_string_or(args, "key", "k");
    size_t len = 0;
    const char *s = capsule_arg_string(args, key, &len);
    int64_t i = 0;
    double d = 0;
    bool b = false;
    size_t raw_len = 0;
    const char *raw = capsule_arg_raw(args, key, &raw_len);
    bool has_int = capsule_arg_int(args, key, &i);
    bool has_number = capsule_arg_number(args, key, &d);
    bool has_bool = capsule_arg_bool(args, key, &b);
    char *escaped = capsule_alloc(len * 4 + 1);
    size_t o = 0;
    for (size_t k = 0; s && k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c < 0x20 || c >= 0x7f) {
            o += (size_t)sprintf(escaped + o, "<%02x>", c);
        } else {
            escaped[o++] = (char)c;
        }
    }
    escaped[o] = '\0';
    return capsule_textf(out, "has=%d str=%s%s%s len=%zu int=%s%lld num=%s%g bool=%s%d raw=%.*s",
                         capsule_arg_has(args, key), s ? "'" : "", s ? escaped : "-",
                         s ? "'" : "", len, has_int ? "" : "-", (long long)i,
                         has_number ? "" : "-", d, has_bool ? "" : "-", b,
                         raw ? (int)raw_len : 1, raw ? raw : "-");
}

/* Every getter on every key of the fuzz document. */
static capsule_result probe_all(const capsule_args *args, capsule_out *out) {
    static const char *keys[] = {"k", "n", "i", "b", "z", "arr", "o", "x", ""};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t len;
        int64_t i;
        double d;
        bool b;
        capsule_arg_has(args, keys[k]);
        capsule_arg_string(args, keys[k], &len);
        capsule_arg_raw(args, keys[k], &len);
        capsule_arg_int(args, keys[k], &i);
        capsule_arg_number(args, keys[k], &d);
        capsule_arg_bool(args, keys[k], &b);
    }
    return capsule_text(out, "ok");
}

static capsule_result two_texts(const capsule_args *args, capsule_out *out) {
    (void)args;
    capsule_text(out, "one");
    capsule_text_n(out, "t\0o", 3);
    return capsule_textf(out, "%d-%s", 3, "three");
}

static capsule_result fails(const capsule_args *args, capsule_out *out) {
    return capsule_fail(out, "could not %s: %d", capsule_arg_string_or(args, "what", "x"), 42);
}

static capsule_result invalid(const capsule_args *args, capsule_out *out) {
    (void)args;
    return capsule_invalid(out, "`n` must be even");
}

static capsule_result fails_silently(const capsule_args *args, capsule_out *out) {
    (void)args;
    (void)out;
    return CAPSULE_FAILED;
}

static capsule_result fails_but_returns_ok(const capsule_args *args, capsule_out *out) {
    (void)args;
    capsule_fail(out, "the error wins");
    return CAPSULE_OK;
}

static capsule_result bad_verdict(const capsule_args *args, capsule_out *out) {
    (void)args;
    (void)out;
    return (capsule_result)77;
}

static capsule_result structured(const capsule_args *args, capsule_out *out) {
    capsule_json *j = capsule_structured(out);
    capsule_json_object_begin(j);
    capsule_json_key(j, "n");
    capsule_json_int(j, capsule_arg_int_or(args, "n", 0));
    capsule_json_key(j, "tags");
    capsule_json_array_begin(j);
    capsule_json_string(j, "a");
    capsule_json_string(j, "b\"c");
    capsule_json_array_end(j);
    capsule_json_object_end(j);
    if (capsule_arg_bool_or(args, "with_text", false)) {
        capsule_text(out, "summary");
    }
    return capsule_done(out);
}

static capsule_result structured_unfinished(const capsule_args *args, capsule_out *out) {
    (void)args;
    capsule_json *j = capsule_structured(out);
    capsule_json_object_begin(j);
    capsule_json_key(j, "n");
    return CAPSULE_OK;
}

static capsule_result structured_array(const capsule_args *args, capsule_out *out) {
    (void)args;
    capsule_json *j = capsule_structured(out);
    capsule_json_array_begin(j);
    capsule_json_array_end(j);
    return CAPSULE_OK;
}

static capsule_result text_only(const capsule_args *args, capsule_out *out) {
    (void)args;
    return capsule_text(out, "no structured");
}

static capsule_result bad_utf8(const capsule_args *args, capsule_out *out) {
    (void)args;
    return capsule_text_n(out, "a\xff" "b\xc3", 4);
}

static capsule_result host(const capsule_args *args, capsule_out *out) {
    (void)args;
    capsule_log(CAPSULE_WARN, "level %d \xff", 3);
    capsule_progress(1, 4, "reading");
    const char *key = capsule_config("api-key");
    const char *missing = capsule_config("nope");
    return capsule_textf(out, "%s %s %d", key ? key : "-", missing ? missing : "-",
                         capsule_cancelled());
}

static const capsule_tool TOOLS[] = {
    {.name = "probe", .description = "reads one key", .run = probe},
    {.name = "probe_all", .description = "reads every key", .run = probe_all},
    {.name = "two_texts", .description = "three text blocks", .run = two_texts},
    {.name = "fails", .description = "fails", .run = fails},
    {.name = "invalid", .description = "rejects its arguments", .run = invalid},
    {.name = "fails_silently", .description = "fails without a message", .run = fails_silently},
    {.name = "fails_but_returns_ok", .description = "x", .run = fails_but_returns_ok},
    {.name = "bad_verdict", .description = "x", .run = bad_verdict},
    {.name = "structured", .description = "x", .output_schema = "{\"type\":\"object\"}",
     .run = structured},
    {.name = "structured_unfinished", .description = "x", .run = structured_unfinished},
    {.name = "structured_array", .description = "x", .run = structured_array},
    {.name = "text_only", .description = "x", .output_schema = "{\"type\":\"object\"}",
     .run = text_only},
    {.name = "bad_utf8", .description = "x", .run = bad_utf8},
    {.name = "host", .description = "x", .run = host},
    {.name = "no_run", .description = "a table entry without a function"},
};

CAPSULE_PLUGIN(TOOLS)

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

static capsule_call_output call(const char *name, const char *args) {
    return capsule_call(&capsule_plugin_definition, name, strlen(name), args, strlen(args));
}

static capsule_call_output call_n(const char *name, const char *args, size_t len) {
    return capsule_call(&capsule_plugin_definition, name, strlen(name), args, len);
}

/* The first text block of a successful call, or "ERROR(<status>): <message>". */
static char result_text[512];

static const char *text_of(capsule_call_output r) {
    if (r.status != CAPSULE_STATUS_OK) {
        snprintf(result_text, sizeof result_text, "ERROR(%d): %.*s", (int)r.status,
                 (int)r.message.len, r.message.ptr);
    } else if (r.text_count == 0) {
        snprintf(result_text, sizeof result_text, "(no text)");
    } else {
        snprintf(result_text, sizeof result_text, "%.*s", (int)r.texts[0].len, r.texts[0].ptr);
    }
    return result_text;
}

static const char *probe_of(const char *args) {
    const char *text = text_of(call("probe", args));
    capsule_call_end();
    return text;
}

/* ---------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------- */

static void test_reader_values(void) {
    current = "reader values";
    CHECK_STR(probe_of("{\"k\":\"plain\"}"),
              "has=1 str='plain' len=5 int=-0 num=-0 bool=-0 raw=\"plain\"");
    CHECK_STR(probe_of("{\"k\":\"a\\\"b\\\\c\\/d\\n\\t\\r\\b\\f\"}"),
              "has=1 str='a\"b\\c/d<0a><09><0d><08><0c>' len=12 int=-0 num=-0 bool=-0 "
              "raw=\"a\\\"b\\\\c\\/d\\n\\t\\r\\b\\f\"");
    /* \u escapes: BMP, surrogate pair, lone surrogates, NUL. */
    CHECK_STR(probe_of("{\"k\":\"\\u00e9\\u20AC\"}"),
              "has=1 str='<c3><a9><e2><82><ac>' len=5 int=-0 num=-0 bool=-0 "
              "raw=\"\\u00e9\\u20AC\"");
    CHECK_STR(probe_of("{\"k\":\"\\ud83d\\ude00\"}"),
              "has=1 str='<f0><9f><98><80>' len=4 int=-0 num=-0 bool=-0 raw=\"\\ud83d\\ude00\"");
    CHECK_STR(probe_of("{\"k\":\"\\ud83dx\\ude00\"}"),
              "has=1 str='<ef><bf><bd>x<ef><bf><bd>' len=7 int=-0 num=-0 bool=-0 "
              "raw=\"\\ud83dx\\ude00\"");
    CHECK_STR(probe_of("{\"k\":\"\\ud83d\\u0041\"}"),
              "has=1 str='<ef><bf><bd>A' len=4 int=-0 num=-0 bool=-0 raw=\"\\ud83d\\u0041\"");
    CHECK_STR(probe_of("{\"k\":\"a\\u0000b\"}"),
              "has=1 str='a<00>b' len=3 int=-0 num=-0 bool=-0 raw=\"a\\u0000b\"");
    CHECK_STR(probe_of("{\"k\":\"h\xc3\xa9\"}"),
              "has=1 str='h<c3><a9>' len=3 int=-0 num=-0 bool=-0 raw=\"h\xc3\xa9\"");
    /* Numbers. */
    CHECK_STR(probe_of("{\"k\":42}"), "has=1 str=- len=0 int=42 num=42 bool=-0 raw=42");
    CHECK_STR(probe_of("{\"k\":-0}"), "has=1 str=- len=0 int=0 num=-0 bool=-0 raw=-0");
    CHECK_STR(probe_of("{\"k\":3.0}"), "has=1 str=- len=0 int=3 num=3 bool=-0 raw=3.0");
    CHECK_STR(probe_of("{\"k\":1e3}"), "has=1 str=- len=0 int=1000 num=1000 bool=-0 raw=1e3");
    CHECK_STR(probe_of("{\"k\":1.5}"), "has=1 str=- len=0 int=-0 num=1.5 bool=-0 raw=1.5");
    CHECK_STR(probe_of("{\"k\":-2.5E-1}"),
              "has=1 str=- len=0 int=-0 num=-0.25 bool=-0 raw=-2.5E-1");
    CHECK_STR(probe_of("{\"k\":9223372036854775807}"),
              "has=1 str=- len=0 int=9223372036854775807 num=9.22337e+18 bool=-0 "
              "raw=9223372036854775807");
    CHECK_STR(probe_of("{\"k\":-9223372036854775808}"),
              "has=1 str=- len=0 int=-9223372036854775808 num=-9.22337e+18 bool=-0 "
              "raw=-9223372036854775808");
    CHECK_STR(probe_of("{\"k\":9223372036854775808}"),
              "has=1 str=- len=0 int=-0 num=9.22337e+18 bool=-0 raw=9223372036854775808");
    CHECK_STR(probe_of("{\"k\":99999999999999999999999}"),
              "has=1 str=- len=0 int=-0 num=1e+23 bool=-0 raw=99999999999999999999999");
    CHECK_STR(probe_of("{\"k\":1e400}"), "has=1 str=- len=0 int=-0 num=inf bool=-0 raw=1e400");
    /* Literals, containers, absence. */
    CHECK_STR(probe_of("{\"k\":true}"), "has=1 str=- len=0 int=-0 num=-0 bool=1 raw=true");
    CHECK_STR(probe_of("{\"k\":false}"), "has=1 str=- len=0 int=-0 num=-0 bool=0 raw=false");
    CHECK_STR(probe_of("{\"k\":null}"), "has=1 str=- len=0 int=-0 num=-0 bool=-0 raw=null");
    CHECK_STR(probe_of("{\"k\": [1, {\"x\": [\"]\"]}] }"),
              "has=1 str=- len=0 int=-0 num=-0 bool=-0 raw=[1, {\"x\": [\"]\"]}]");
    CHECK_STR(probe_of("{\"other\":1}"), "has=0 str=- len=0 int=-0 num=-0 bool=-0 raw=-");
    CHECK_STR(probe_of("{}"), "has=0 str=- len=0 int=-0 num=-0 bool=-0 raw=-");
    CHECK_STR(probe_of(" \n\t{ \"k\" : 1 , \"z\" : 2 } \r\n"),
              "has=1 str=- len=0 int=1 num=1 bool=-0 raw=1");
    /* Keys: escaped keys match their decoded form; the last duplicate wins. */
    CHECK_STR(probe_of("{\"key\":\"\\u00e9\",\"\\u00e9\":7}"),
              "has=1 str=- len=0 int=7 num=7 bool=-0 raw=7");
    CHECK_STR(probe_of("{\"k\":1,\"k\":\"two\"}"),
              "has=1 str='two' len=3 int=-0 num=-0 bool=-0 raw=\"two\"");
    /* A nested key is not a top-level key. */
    CHECK_STR(probe_of("{\"o\":{\"k\":1}}"), "has=0 str=- len=0 int=-0 num=-0 bool=-0 raw=-");
}

static void test_reader_malformed(void) {
    current = "reader malformed";
    static const char *bad[] = {
        "",
        "   ",
        "{",
        "}",
        "[]",
        "\"k\"",
        "42",
        "null",
        "{\"k\"}",
        "{\"k\":}",
        "{\"k\" 1}",
        "{k:1}",
        "{'k':1}",
        "{\"k\":1,}",
        "{,\"k\":1}",
        "{\"k\":1 \"j\":2}",
        "{\"k\":[1,]}",
        "{\"k\":[1 2]}",
        "{\"k\":tru}",
        "{\"k\":nul}",
        "{\"k\":True}",
        "{\"k\":01}",
        "{\"k\":1.}",
        "{\"k\":.5}",
        "{\"k\":-}",
        "{\"k\":1e}",
        "{\"k\":1e+}",
        "{\"k\":+1}",
        "{\"k\":0x10}",
        "{\"k\":NaN}",
        "{\"k\":\"abc",
        "{\"k\":\"abc\\",
        "{\"k\":\"\\x\"}",
        "{\"k\":\"\\u12\"}",
        "{\"k\":\"\\u12g4\"}",
        "{\"k\":\"\\u",
        "{\"k\":\"a\nb\"}",
        "{\"k\":\"a\tb\"}",
        "{\"k\":1}}",
        "{\"k\":1} x",
        "{\"k\":1}{}",
        "{\"k\":{\"j\":1}",
        "{\"k\":[[[]]}",
        "{\"k\":1",
        "{\"k\"",
        "{\"k",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        capsule_call_output r = call("probe", bad[i]);
        if (r.status != CAPSULE_STATUS_INVALID) {
            fprintf(stderr, "  accepted malformed input: %s\n", bad[i]);
        }
        CHECK(r.status == CAPSULE_STATUS_INVALID);
        CHECK(r.message.len > 0 &&
              strncmp(r.message.ptr, "the arguments are not a JSON object: ", 37) == 0);
        capsule_call_end();
    }
    /* Embedded NUL bytes are not whitespace. */
    capsule_call_output r = call_n("probe", "{\"k\":1}\0", 8);
    CHECK(r.status == CAPSULE_STATUS_INVALID);
    capsule_call_end();
    r = call_n("probe", "{\"k\":\"a\0b\"}", 11);
    CHECK(r.status == CAPSULE_STATUS_INVALID);
    capsule_call_end();
    /* The position is reported. */
    CHECK_STR(text_of(call("probe", "{\"k\":tru}")),
              "ERROR(2): the arguments are not a JSON object: unexpected character at byte 5");
    capsule_call_end();
    CHECK_STR(text_of(call("probe", "[1]")),
              "ERROR(2): the arguments are not a JSON object: expected a JSON object at byte 0");
    capsule_call_end();
}

static void test_reader_depth(void) {
    current = "reader depth";
    /* Deep nesting is refused, not a stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 16);
    size_t o = 0;
    o += (size_t)sprintf(deep, "{\"k\":");
    for (size_t i = 0; i < depth; i++) {
        deep[o++] = '[';
    }
    for (size_t i = 0; i < depth; i++) {
        deep[o++] = ']';
    }
    deep[o++] = '}';
    capsule_call_output r = call_n("probe", deep, o);
    CHECK_STR(text_of(r),
              "ERROR(2): the arguments are not a JSON object: nested too deeply at byte 132");
    capsule_call_end();
    /* 100 levels are fine. */
    o = (size_t)sprintf(deep, "{\"k\":");
    for (size_t i = 0; i < 100; i++) {
        deep[o++] = '[';
    }
    for (size_t i = 0; i < 100; i++) {
        deep[o++] = ']';
    }
    deep[o++] = '}';
    r = call_n("probe", deep, o);
    CHECK(r.status == CAPSULE_STATUS_OK);
    capsule_call_end();
    free(deep);
}

/* Every prefix and thousands of random mutations of a valid document: the reader must
 * accept or reject each without crashing (AddressSanitizer watches the reads), and every
 * accepted document must answer every getter. */
static void test_reader_fuzz(void) {
    current = "reader fuzz";
    static const char doc[] =
        "{\"k\": \"a\\u00e9\\ud83d\\ude00\\n\", \"n\": -12.5e-3, \"i\": 123456789012,"
        " \"b\": true, \"z\": null, \"arr\": [1, [2, {\"x\": \"y\"}], \"s\\\"\"], \"o\": {}}";
    size_t len = sizeof doc - 1;
    size_t accepted = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exact size, so an over-read is caught */
        memcpy(copy, doc, cut);
        capsule_call_output r = call_n("probe", copy, cut);
        if (r.status != CAPSULE_STATUS_OK && r.status != CAPSULE_STATUS_INVALID) {
            CHECK(false);
        }
        accepted += r.status == CAPSULE_STATUS_OK;
        capsule_call_end();
        free(copy);
    }
    CHECK(accepted == 1); /* only the whole document */
    static const char alphabet[] = "{}[]\",:\\u0123456789abcdefntrlsE.-+ \t\n\xc3\xa9\xff";
    uint32_t seed = 12345;
    char *copy = malloc(len);
    int mutants_accepted = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, doc, len);
        int edits = 1 + round % 4;
        size_t n = len;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            int kind = (int)((seed >> 8) % 3);
            seed = seed * 1103515245u + 12345u;
            char c = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
            if (kind == 0) {
                copy[at] = c;
            } else if (kind == 1 && n > 1) {
                memmove(copy + at, copy + at + 1, n - at - 1);
                n--;
            } else {
                copy[at] = (char)(seed >> 16);
            }
        }
        capsule_call_output r = call_n("probe", copy, n);
        if (r.status != CAPSULE_STATUS_OK && r.status != CAPSULE_STATUS_INVALID) {
            CHECK(false);
        }
        capsule_call_end();
        if (r.status == CAPSULE_STATUS_OK) {
            mutants_accepted++;
            r = call_n("probe_all", copy, n);
            if (r.status != CAPSULE_STATUS_OK) {
                CHECK(false);
            }
        }
        capsule_call_end();
    }
    free(copy);
    /* Some mutations keep the document valid (an edit inside a string), most do not. */
    CHECK(mutants_accepted > 100 && mutants_accepted < 19000);
}

static char *json_of(void (*write)(capsule_json *)) {
    capsule_json *j = capsule_json_new();
    write(j);
    const char *error = capsule_json_error(j);
    if (error) {
        return capsule_strndup(error, strlen(error));
    }
    size_t len = 0;
    const char *text = capsule_json_text(j, &len);
    return capsule_strndup(text, len);
}

static void write_escapes(capsule_json *j) {
    capsule_json_object_begin(j);
    capsule_json_key(j, "q\"k");
    capsule_json_string(j, "a\"b\\c/d\n\r\t\b\f\x01\x1f\x7f");
    capsule_json_key(j, "utf8");
    capsule_json_string(j, "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    capsule_json_key(j, "bad");
    capsule_json_string(j, "a\xff" "b\xc3(\xed\xa0\x80z\xc3");
    capsule_json_key(j, "nul");
    capsule_json_string_n(j, "a\0b", 3);
    capsule_json_key(j, "none");
    capsule_json_string(j, NULL);
    capsule_json_object_end(j);
}

static void write_values(capsule_json *j) {
    capsule_json_array_begin(j);
    capsule_json_int(j, INT64_MIN);
    capsule_json_int(j, 0);
    capsule_json_uint(j, UINT64_MAX);
    capsule_json_number(j, 0.1);
    capsule_json_number(j, 1e300);
    capsule_json_number(j, -2.5);
    capsule_json_number(j, NAN);
    capsule_json_number(j, INFINITY);
    capsule_json_bool(j, true);
    capsule_json_bool(j, false);
    capsule_json_null(j);
    capsule_json_raw(j, "{\"r\":1}", 7);
    capsule_json_array_begin(j);
    capsule_json_array_end(j);
    capsule_json_object_begin(j);
    capsule_json_object_end(j);
    capsule_json_array_begin(j);
    capsule_json_object_begin(j);
    capsule_json_key(j, "a");
    capsule_json_array_begin(j);
    capsule_json_int(j, 1);
    capsule_json_int(j, 2);
    capsule_json_array_end(j);
    capsule_json_key(j, "b");
    capsule_json_int(j, 3);
    capsule_json_object_end(j);
    capsule_json_array_end(j);
    capsule_json_array_end(j);
}

static void write_value_without_key(capsule_json *j) {
    capsule_json_object_begin(j);
    capsule_json_int(j, 1);
    capsule_json_object_end(j);
}

static void write_key_outside_object(capsule_json *j) {
    capsule_json_array_begin(j);
    capsule_json_key(j, "a");
    capsule_json_array_end(j);
}

static void write_two_keys(capsule_json *j) {
    capsule_json_object_begin(j);
    capsule_json_key(j, "a");
    capsule_json_key(j, "b");
}

static void write_dangling_key(capsule_json *j) {
    capsule_json_object_begin(j);
    capsule_json_key(j, "a");
    capsule_json_object_end(j);
}

static void write_wrong_end(capsule_json *j) {
    capsule_json_object_begin(j);
    capsule_json_array_end(j);
}

static void write_end_only(capsule_json *j) { capsule_json_object_end(j); }

static void write_two_values(capsule_json *j) {
    capsule_json_int(j, 1);
    capsule_json_int(j, 2);
}

static void write_unfinished(capsule_json *j) {
    capsule_json_array_begin(j);
    capsule_json_int(j, 1);
}

static void write_nothing(capsule_json *j) { (void)j; }

static void write_too_deep(capsule_json *j) {
    for (int i = 0; i < 1000; i++) {
        capsule_json_array_begin(j);
    }
}

static void write_large(capsule_json *j) {
    capsule_json_array_begin(j);
    for (int i = 0; i < 100000; i++) {
        capsule_json_string(j, "0123456789");
    }
    capsule_json_array_end(j);
}

static void test_writer(void) {
    current = "writer";
    CHECK_STR(json_of(write_escapes),
              "{\"q\\\"k\":\"a\\\"b\\\\c/d\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\","
              "\"utf8\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
              "\"bad\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz"
              "\xef\xbf\xbd\","
              "\"nul\":\"a\\u0000b\",\"none\":null}");
    CHECK_STR(json_of(write_values),
              "[-9223372036854775808,0,18446744073709551615,0.1,1e+300,-2.5,null,null,true,"
              "false,null,{\"r\":1},[],{},[{\"a\":[1,2],\"b\":3}]]");
    CHECK_STR(json_of(write_value_without_key), "a JSON value in an object without a key");
    CHECK_STR(json_of(write_key_outside_object), "a JSON key outside an object");
    CHECK_STR(json_of(write_two_keys), "two JSON keys in a row");
    CHECK_STR(json_of(write_dangling_key), "a JSON key without a value");
    CHECK_STR(json_of(write_wrong_end), "capsule_json_array_end without an open array");
    CHECK_STR(json_of(write_end_only), "capsule_json_object_end without an open object");
    CHECK_STR(json_of(write_two_values), "a second top-level JSON value");
    CHECK_STR(json_of(write_unfinished),
              "unfinished JSON value (an object or array was not ended)");
    CHECK_STR(json_of(write_nothing), "no JSON value was written");
    CHECK_STR(json_of(write_too_deep), "JSON nested too deeply");
    char *large = json_of(write_large);
    CHECK(large && strlen(large) == 100000 * 13 + 1);
    capsule_json *j = capsule_json_new();
    capsule_json_key(j, "x");
    CHECK(capsule_json_text(j, NULL) == NULL);
    capsule_call_end();
}

static void test_dispatch(void) {
    current = "dispatch";
    capsule_call_output r = call("nope", "{}");
    CHECK(r.status == CAPSULE_STATUS_UNKNOWN_TOOL);
    CHECK_STR(text_of(r), "ERROR(1): nope");
    capsule_call_end();
    CHECK_STR(text_of(call("no_run", "{}")), "ERROR(1): no_run");
    capsule_call_end();
    /* A name is matched exactly, not by prefix. */
    CHECK_STR(text_of(call("prob", "{}")), "ERROR(1): prob");
    capsule_call_end();
    CHECK_STR(text_of(call("probe2", "{}")), "ERROR(1): probe2");
    capsule_call_end();

    r = call("two_texts", "{}");
    CHECK(r.status == CAPSULE_STATUS_OK && r.text_count == 3 && r.structured.ptr == NULL);
    CHECK(r.texts[1].len == 3 && memcmp(r.texts[1].ptr, "t\0o", 3) == 0);
    CHECK_STR(r.texts[2].ptr, "3-three");
    capsule_call_end();

    CHECK_STR(text_of(call("fails", "{\"what\":\"open\"}")), "ERROR(3): could not open: 42");
    capsule_call_end();
    CHECK_STR(text_of(call("invalid", "{}")), "ERROR(2): `n` must be even");
    capsule_call_end();
    CHECK_STR(text_of(call("fails_silently", "{}")), "ERROR(3): tool `fails_silently` failed");
    capsule_call_end();
    CHECK_STR(text_of(call("fails_but_returns_ok", "{}")), "ERROR(3): the error wins");
    capsule_call_end();
    CHECK_STR(text_of(call("bad_verdict", "{}")),
              "ERROR(3): tool `bad_verdict` returned an unknown result (77)");
    capsule_call_end();

    r = call("structured", "{\"n\":5}");
    CHECK(r.status == CAPSULE_STATUS_OK && r.text_count == 1);
    CHECK_STR(r.structured.ptr, "{\"n\":5,\"tags\":[\"a\",\"b\\\"c\"]}");
    CHECK_STR(r.texts[0].ptr, "{\"n\":5,\"tags\":[\"a\",\"b\\\"c\"]}");
    capsule_call_end();
    r = call("structured", "{\"n\":5,\"with_text\":true}");
    CHECK(r.status == CAPSULE_STATUS_OK && r.text_count == 1 && r.structured.ptr);
    CHECK_STR(r.texts[0].ptr, "summary");
    capsule_call_end();
    CHECK_STR(text_of(call("structured_unfinished", "{}")),
              "ERROR(3): tool `structured_unfinished` wrote bad structured JSON: unfinished "
              "JSON value (an object or array was not ended)");
    capsule_call_end();
    CHECK_STR(text_of(call("structured_array", "{}")),
              "ERROR(3): tool `structured_array` wrote structured JSON that is not an object");
    capsule_call_end();
    CHECK_STR(text_of(call("text_only", "{}")),
              "ERROR(3): tool `text_only` declares an output schema but returned no "
              "structured result (use capsule_structured)");
    capsule_call_end();

    /* Invalid UTF-8 from a tool becomes U+FFFD, so the host always gets valid strings. */
    r = call("bad_utf8", "{}");
    CHECK(r.status == CAPSULE_STATUS_OK && r.text_count == 1);
    CHECK_STR(r.texts[0].ptr, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    capsule_call_end();

    CHECK(strcmp(capsule_tool_input_schema(&TOOLS[0]),
                 "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}") == 0);
    CHECK_STR(CAPSULE_JSON({"type": "object", "properties": {"a": {"description": "x \"y\"\n"}}}),
              "{\"type\": \"object\", \"properties\": {\"a\": {\"description\": "
              "\"x \\\"y\\\"\\n\"}}}");
}

static void test_host(void) {
    current = "host";
    cancelled_flag = true;
    CHECK_STR(text_of(call("host", "{}")), "s3cret - 1");
    CHECK_STR(last_log, "level 3 \xef\xbf\xbd");
    CHECK(last_level == CAPSULE_WARN);
    CHECK(last_done == 1 && last_total == 4);
    CHECK_STR(last_progress, "reading");
    capsule_call_end();
    capsule_progress(2, -1, NULL);
    CHECK_STR(last_progress, "(none)");
    CHECK(last_total < 0);
    capsule_call_end();
}

static void test_caller(void) {
    current = "caller";
    current_caller = NULL;
    CHECK(capsule_caller() == NULL);
    CHECK(!capsule_caller_has_scope("tools:call"));
    current_caller = &alice;
    CHECK_STR(capsule_caller()->name, "alice");
    CHECK(capsule_caller()->scope_count == 2);
    CHECK(capsule_caller_has_scope("files:read"));
    CHECK(!capsule_caller_has_scope("files:write"));
    CHECK(!capsule_caller_has_scope("files"));
    CHECK(!capsule_caller_has_scope(NULL));
    current_caller = NULL;
}

static void test_utf8(void) {
    current = "utf8";
    CHECK(capsule_utf8_valid("", 0));
    CHECK(capsule_utf8_valid("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
    CHECK(!capsule_utf8_valid("\xc3", 1));
    CHECK(!capsule_utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!capsule_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!capsule_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!capsule_utf8_valid("\xff", 1));
    capsule_bytes b = capsule_utf8_sanitize("\xe2\x82", 2);
    CHECK_STR(b.ptr, "\xef\xbf\xbd\xef\xbf\xbd");
    capsule_call_end();
}

int main(void) {
    test_reader_values();
    test_reader_malformed();
    test_reader_depth();
    test_reader_fuzz();
    test_writer();
    test_dispatch();
    test_host();
    test_caller();
    test_utf8();
    printf("capsule-c-sdk: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
