/*
 * capsule_tool.c — the portable part of the Capsule C SDK: call memory, the argument
 * reader, the JSON writer, results and dispatch. It knows nothing about WIT (that is
 * capsule_wit.c), so it builds and is tested natively.
 */
#include "capsule_tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Call memory: every allocation is a node of one doubly linked list, freed at call end.
 * ------------------------------------------------------------------------------------- */

typedef struct node {
    struct node *prev;
    struct node *next;
    _Alignas(max_align_t) unsigned char data[];
} node;

static node *call_memory;

void *capsule_alloc(size_t size) {
    if (size > SIZE_MAX - sizeof(node)) {
        return NULL;
    }
    node *n = malloc(sizeof(node) + size);
    if (!n) {
        return NULL;
    }
    n->prev = NULL;
    n->next = call_memory;
    if (call_memory) {
        call_memory->prev = n;
    }
    call_memory = n;
    return n->data;
}

/* Grows (or allocates, for NULL) a block of call memory. */
static void *call_realloc(void *ptr, size_t size) {
    if (!ptr) {
        return capsule_alloc(size);
    }
    if (size > SIZE_MAX - sizeof(node)) {
        return NULL;
    }
    node *old = (node *)((unsigned char *)ptr - offsetof(node, data));
    node *n = realloc(old, sizeof(node) + size);
    if (!n) {
        return NULL;
    }
    if (n->prev) {
        n->prev->next = n;
    } else {
        call_memory = n;
    }
    if (n->next) {
        n->next->prev = n;
    }
    return n->data;
}

void capsule_call_end(void) {
    while (call_memory) {
        node *next = call_memory->next;
        free(call_memory);
        call_memory = next;
    }
}

char *capsule_strndup(const char *text, size_t len) {
    if (len == SIZE_MAX) {
        return NULL;
    }
    char *copy = capsule_alloc(len + 1);
    if (copy) {
        if (len) {
            memcpy(copy, text, len);
        }
        copy[len] = '\0';
    }
    return copy;
}

/* printf into call memory; NULL when out of memory or on a bad format. */
static char *format_v(const char *format, va_list ap, size_t *len) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (n < 0) {
        return NULL;
    }
    char *text = capsule_alloc((size_t)n + 1);
    if (!text) {
        return NULL;
    }
    vsnprintf(text, (size_t)n + 1, format, ap);
    if (len) {
        *len = (size_t)n;
    }
    return text;
}

/* ---------------------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s[0..len), or 0 when it is invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F; /* no surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (len < need || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return need;
}

bool capsule_utf8_valid(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_sequence(s + i, len - i);
        if (!n) {
            return false;
        }
        i += n;
    }
    return true;
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD";

capsule_bytes capsule_utf8_sanitize(const char *text, size_t len) {
    capsule_bytes result = {NULL, 0};
    if (capsule_utf8_valid(text, len)) {
        result.ptr = capsule_strndup(text, len);
        result.len = result.ptr ? len : 0;
        return result;
    }
    /* Every invalid byte becomes 3 bytes at most. */
    if (len > (SIZE_MAX - 1) / 3) {
        return result;
    }
    char *copy = capsule_alloc(len * 3 + 1);
    if (!copy) {
        return result;
    }
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = utf8_sequence(s + i, len - i);
        if (n) {
            memcpy(copy + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(copy + o, REPLACEMENT, 3);
            o += 3;
            i += 1;
        }
    }
    copy[o] = '\0';
    result.ptr = copy;
    result.len = o;
    return result;
}

/* ---------------------------------------------------------------------------------------
 * JSON reader: a validating recursive-descent parser over (ptr, len), bounded in depth.
 * ------------------------------------------------------------------------------------- */

#define MAX_DEPTH 128

typedef struct reader {
    const char *s;
    size_t len;
    size_t pos;
    unsigned depth;
    const char *error;
} reader;

typedef struct member {
    const char *key; /* decoded, NUL-terminated */
    size_t key_len;
    const char *value; /* JSON text of the value */
    size_t value_len;
} member;

struct capsule_args {
    member *members;
    size_t count;
};

static bool fail_at(reader *r, const char *error) {
    if (!r->error) {
        r->error = error;
    }
    return false;
}

static void skip_ws(reader *r) {
    while (r->pos < r->len) {
        char c = r->s[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        r->pos++;
    }
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool parse_value(reader *r);

/* A string starting at the opening quote. */
static bool parse_string(reader *r) {
    r->pos++; /* the opening quote */
    while (r->pos < r->len) {
        unsigned char c = (unsigned char)r->s[r->pos];
        if (c == '"') {
            r->pos++;
            return true;
        }
        if (c < 0x20) {
            return fail_at(r, "control character in a string");
        }
        if (c == '\\') {
            r->pos++;
            if (r->pos >= r->len) {
                break;
            }
            char e = r->s[r->pos];
            if (e == 'u') {
                if (r->len - r->pos < 5) {
                    return fail_at(r, "truncated \\u escape");
                }
                for (size_t i = 1; i <= 4; i++) {
                    if (hex_value(r->s[r->pos + i]) < 0) {
                        return fail_at(r, "bad \\u escape");
                    }
                }
                r->pos += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return fail_at(r, "bad escape in a string");
            }
        }
        r->pos++;
    }
    return fail_at(r, "unterminated string");
}

static bool parse_number(reader *r) {
    size_t p = r->pos;
    if (p < r->len && r->s[p] == '-') {
        p++;
    }
    if (p >= r->len || !is_digit(r->s[p])) {
        return fail_at(r, "bad number");
    }
    if (r->s[p] == '0') {
        p++;
    } else {
        while (p < r->len && is_digit(r->s[p])) {
            p++;
        }
    }
    if (p < r->len && r->s[p] == '.') {
        p++;
        if (p >= r->len || !is_digit(r->s[p])) {
            return fail_at(r, "bad number");
        }
        while (p < r->len && is_digit(r->s[p])) {
            p++;
        }
    }
    if (p < r->len && (r->s[p] == 'e' || r->s[p] == 'E')) {
        p++;
        if (p < r->len && (r->s[p] == '+' || r->s[p] == '-')) {
            p++;
        }
        if (p >= r->len || !is_digit(r->s[p])) {
            return fail_at(r, "bad number");
        }
        while (p < r->len && is_digit(r->s[p])) {
            p++;
        }
    }
    r->pos = p;
    return true;
}

static bool parse_literal(reader *r, const char *word) {
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->s + r->pos, word, n) != 0) {
        return fail_at(r, "unexpected character");
    }
    r->pos += n;
    return true;
}

/* An array or object (`close` is ']' or '}'); members are recorded into `into`, if any. */
static bool parse_container(reader *r, char close, capsule_args *into) {
    if (++r->depth > MAX_DEPTH) {
        return fail_at(r, "nested too deeply");
    }
    r->pos++; /* the opening bracket */
    skip_ws(r);
    size_t capacity = 0;
    if (r->pos < r->len && r->s[r->pos] == close) {
        r->pos++;
        r->depth--;
        return true;
    }
    for (;;) {
        skip_ws(r);
        const char *key = NULL;
        size_t key_len = 0;
        if (close == '}') {
            if (r->pos >= r->len || r->s[r->pos] != '"') {
                return fail_at(r, "expected a string key");
            }
            key = r->s + r->pos;
            if (!parse_string(r)) {
                return false;
            }
            key_len = (size_t)(r->s + r->pos - key);
            skip_ws(r);
            if (r->pos >= r->len || r->s[r->pos] != ':') {
                return fail_at(r, "expected `:`");
            }
            r->pos++;
            skip_ws(r);
        }
        size_t start = r->pos;
        if (!parse_value(r)) {
            return false;
        }
        if (into) {
            if (into->count == capacity) {
                size_t more = capacity ? capacity * 2 : 8;
                member *grown = call_realloc(into->members, more * sizeof(member));
                if (!grown) {
                    return fail_at(r, "out of memory");
                }
                into->members = grown;
                capacity = more;
            }
            member *m = &into->members[into->count++];
            m->key = key;         /* decoded later */
            m->key_len = key_len; /* with its quotes, for now */
            m->value = r->s + start;
            m->value_len = r->pos - start;
        }
        skip_ws(r);
        if (r->pos >= r->len) {
            return fail_at(r, "unexpected end");
        }
        char c = r->s[r->pos++];
        if (c == close) {
            r->depth--;
            return true;
        }
        if (c != ',') {
            return fail_at(r, close == '}' ? "expected `,` or `}`" : "expected `,` or `]`");
        }
    }
}

static bool parse_value(reader *r) {
    skip_ws(r);
    if (r->pos >= r->len) {
        return fail_at(r, "unexpected end");
    }
    switch (r->s[r->pos]) {
    case '{':
        return parse_container(r, '}', NULL);
    case '[':
        return parse_container(r, ']', NULL);
    case '"':
        return parse_string(r);
    case 't':
        return parse_literal(r, "true");
    case 'f':
        return parse_literal(r, "false");
    case 'n':
        return parse_literal(r, "null");
    default:
        return parse_number(r);
    }
}

static void put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static uint32_t hex4(const char *s) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v = v * 16 + (uint32_t)hex_value(s[i]);
    }
    return v;
}

/* Decodes a string validated by parse_string (text with its quotes) into call memory.
 * The output never exceeds the input's length: escapes shrink, a lone surrogate (6 bytes)
 * becomes U+FFFD (3 bytes). */
static char *decode_string(const char *text, size_t text_len, size_t *out_len) {
    char *out = capsule_alloc(text_len);
    if (!out) {
        return NULL;
    }
    size_t o = 0;
    size_t end = text_len - 1; /* the closing quote */
    for (size_t i = 1; i < end;) {
        char c = text[i];
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        char e = text[i + 1];
        i += 2;
        switch (e) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(text + i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - i >= 6 && text[i] == '\\' &&
                text[i + 1] == 'u') {
                uint32_t low = hex4(text + i + 2);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            put_utf8(out, &o, cp);
            break;
        }
        default: out[o++] = e; break; /* " \ / */
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Parses the argument object; NULL and `*error` set when it is not a JSON object. */
static capsule_args *parse_args(const char *text, size_t len, const char **error, size_t *at) {
    capsule_args *args = capsule_alloc(sizeof(capsule_args));
    if (!args) {
        *error = "out of memory";
        *at = 0;
        return NULL;
    }
    args->members = NULL;
    args->count = 0;
    reader r = {text, len, 0, 0, NULL};
    skip_ws(&r);
    if (r.pos >= len || text[r.pos] != '{') {
        r.error = "expected a JSON object";
    } else if (parse_container(&r, '}', args)) {
        skip_ws(&r);
        if (r.pos != len) {
            r.error = "trailing characters after the object";
        }
    }
    if (r.error) {
        *error = r.error;
        *at = r.pos;
        return NULL;
    }
    for (size_t i = 0; i < args->count; i++) {
        member *m = &args->members[i];
        m->key = decode_string(m->key, m->key_len, &m->key_len);
        if (!m->key) {
            *error = "out of memory";
            *at = 0;
            return NULL;
        }
    }
    return args;
}

/* The value text of `key` (last one wins, like most JSON readers), or NULL. */
static const member *find(const capsule_args *args, const char *key) {
    if (!args || !key) {
        return NULL;
    }
    size_t len = strlen(key);
    for (size_t i = args->count; i-- > 0;) {
        const member *m = &args->members[i];
        if (m->key_len == len && memcmp(m->key, key, len) == 0) {
            return m;
        }
    }
    return NULL;
}

bool capsule_arg_has(const capsule_args *args, const char *key) { return find(args, key) != NULL; }

const char *capsule_arg_raw(const capsule_args *args, const char *key, size_t *len) {
    const member *m = find(args, key);
    if (!m) {
        return NULL;
    }
    if (len) {
        *len = m->value_len;
    }
    return m->value;
}

const char *capsule_arg_string(const capsule_args *args, const char *key, size_t *len) {
    const member *m = find(args, key);
    if (!m || m->value[0] != '"') {
        return NULL;
    }
    size_t n = 0;
    char *text = decode_string(m->value, m->value_len, &n);
    if (text && len) {
        *len = n;
    }
    return text;
}

static bool is_number_start(char c) { return c == '-' || is_digit(c); }

bool capsule_arg_number(const capsule_args *args, const char *key, double *value) {
    const member *m = find(args, key);
    if (!m || !is_number_start(m->value[0])) {
        return false;
    }
    char buffer[64];
    char *copy = buffer;
    if (m->value_len >= sizeof buffer) {
        copy = capsule_strndup(m->value, m->value_len);
        if (!copy) {
            return false;
        }
    } else {
        memcpy(buffer, m->value, m->value_len);
        buffer[m->value_len] = '\0';
    }
    double v = strtod(copy, NULL);
    if (value) {
        *value = v;
    }
    return true;
}

bool capsule_arg_int(const capsule_args *args, const char *key, int64_t *value) {
    const member *m = find(args, key);
    if (!m || !is_number_start(m->value[0])) {
        return false;
    }
    const char *s = m->value;
    size_t n = m->value_len;
    bool negative = s[0] == '-';
    size_t i = negative ? 1 : 0;
    uint64_t magnitude = 0;
    bool plain = true;
    for (; i < n; i++) {
        if (!is_digit(s[i])) {
            plain = false;
            break;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (magnitude > (UINT64_MAX - d) / 10) {
            return false;
        }
        magnitude = magnitude * 10 + d;
    }
    int64_t v;
    if (plain) {
        if (negative) {
            if (magnitude > (uint64_t)INT64_MAX + 1) {
                return false;
            }
            v = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
        } else {
            if (magnitude > (uint64_t)INT64_MAX) {
                return false;
            }
            v = (int64_t)magnitude;
        }
    } else {
        double d;
        if (!capsule_arg_number(args, key, &d)) {
            return false;
        }
        /* 2^63 is exact in a double; the range is [-2^63, 2^63). */
        if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 ||
            d >= 9223372036854775808.0) {
            return false;
        }
        v = (int64_t)d;
    }
    if (value) {
        *value = v;
    }
    return true;
}

bool capsule_arg_bool(const capsule_args *args, const char *key, bool *value) {
    const member *m = find(args, key);
    if (!m || (m->value[0] != 't' && m->value[0] != 'f')) {
        return false;
    }
    if (value) {
        *value = m->value[0] == 't';
    }
    return true;
}

const char *capsule_arg_string_or(const capsule_args *args, const char *key, const char *fallback) {
    const char *v = capsule_arg_string(args, key, NULL);
    return v ? v : fallback;
}

int64_t capsule_arg_int_or(const capsule_args *args, const char *key, int64_t fallback) {
    int64_t v;
    return capsule_arg_int(args, key, &v) ? v : fallback;
}

double capsule_arg_number_or(const capsule_args *args, const char *key, double fallback) {
    double v;
    return capsule_arg_number(args, key, &v) ? v : fallback;
}

bool capsule_arg_bool_or(const capsule_args *args, const char *key, bool fallback) {
    bool v;
    return capsule_arg_bool(args, key, &v) ? v : fallback;
}

/* ---------------------------------------------------------------------------------------
 * JSON writer
 * ------------------------------------------------------------------------------------- */

typedef struct level {
    bool object;     /* else an array */
    bool after_key;  /* an object's key was written, its value is next */
    size_t count;    /* keys (object) or values (array) written */
} level;

struct capsule_json {
    char *text;
    size_t len;
    size_t capacity;
    level levels[MAX_DEPTH];
    unsigned depth;
    bool done; /* the top-level value is complete */
    const char *error;
};

capsule_json *capsule_json_new(void) {
    capsule_json *json = capsule_alloc(sizeof(capsule_json));
    if (json) {
        memset(json, 0, sizeof *json);
    }
    return json;
}

static void misuse(capsule_json *json, const char *error) {
    if (!json->error) {
        json->error = error;
    }
}

static void put(capsule_json *json, const char *bytes, size_t n) {
    if (json->error) {
        return;
    }
    if (json->capacity - json->len <= n) {
        size_t want = json->capacity ? json->capacity : 256;
        while (want - json->len <= n) {
            if (want > SIZE_MAX / 2) {
                misuse(json, "JSON output too large");
                return;
            }
            want *= 2;
        }
        char *grown = call_realloc(json->text, want);
        if (!grown) {
            misuse(json, "out of memory");
            return;
        }
        json->text = grown;
        json->capacity = want;
    }
    memcpy(json->text + json->len, bytes, n);
    json->len += n;
    json->text[json->len] = '\0';
}

static void put_str(capsule_json *json, const char *s) { put(json, s, strlen(s)); }

/* Before any value: separators and the checks that keep the output well formed. */
static bool begin_value(capsule_json *json) {
    if (!json || json->error) {
        return false;
    }
    if (json->depth == 0) {
        if (json->done) {
            misuse(json, "a second top-level JSON value");
            return false;
        }
        return true;
    }
    level *l = &json->levels[json->depth - 1];
    if (l->object) {
        if (!l->after_key) {
            misuse(json, "a JSON value in an object without a key");
            return false;
        }
        l->after_key = false;
    } else {
        if (l->count++) {
            put(json, ",", 1);
        }
    }
    return true;
}

static void end_value(capsule_json *json) {
    if (json->depth == 0) {
        json->done = true;
    }
}

static void put_escaped(capsule_json *json, const char *value, size_t len) {
    static const char HEX[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)value;
    put(json, "\"", 1);
    size_t run = 0; /* start of the bytes not yet written */
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        const char *escape = NULL;
        char unicode[7];
        size_t skip = 1;
        if (c == '"') {
            escape = "\\\"";
        } else if (c == '\\') {
            escape = "\\\\";
        } else if (c < 0x20) {
            switch (c) {
            case '\n': escape = "\\n"; break;
            case '\r': escape = "\\r"; break;
            case '\t': escape = "\\t"; break;
            case '\b': escape = "\\b"; break;
            case '\f': escape = "\\f"; break;
            default:
                memcpy(unicode, "\\u00", 4);
                unicode[4] = HEX[c >> 4];
                unicode[5] = HEX[c & 15];
                unicode[6] = '\0';
                escape = unicode;
            }
        } else if (c >= 0x80) {
            size_t n = utf8_sequence(s + i, len - i);
            if (n) {
                i += n;
                continue;
            }
            escape = REPLACEMENT;
        } else {
            i++;
            continue;
        }
        put(json, value + run, i - run);
        put_str(json, escape);
        i += skip;
        run = i;
    }
    put(json, value + run, len - run);
    put(json, "\"", 1);
}

static void open_container(capsule_json *json, bool object) {
    if (!begin_value(json)) {
        return;
    }
    if (json->depth == MAX_DEPTH) {
        misuse(json, "JSON nested too deeply");
        return;
    }
    json->levels[json->depth++] = (level){object, false, 0};
    put(json, object ? "{" : "[", 1);
}

static void close_container(capsule_json *json, bool object) {
    if (!json || json->error) {
        return;
    }
    if (json->depth == 0 || json->levels[json->depth - 1].object != object) {
        misuse(json, object ? "capsule_json_object_end without an open object"
                            : "capsule_json_array_end without an open array");
        return;
    }
    if (json->levels[json->depth - 1].after_key) {
        misuse(json, "a JSON key without a value");
        return;
    }
    json->depth--;
    put(json, object ? "}" : "]", 1);
    end_value(json);
}

void capsule_json_object_begin(capsule_json *json) { open_container(json, true); }
void capsule_json_object_end(capsule_json *json) { close_container(json, true); }
void capsule_json_array_begin(capsule_json *json) { open_container(json, false); }
void capsule_json_array_end(capsule_json *json) { close_container(json, false); }

void capsule_json_key(capsule_json *json, const char *key) {
    if (!json || json->error) {
        return;
    }
    if (json->depth == 0 || !json->levels[json->depth - 1].object) {
        misuse(json, "a JSON key outside an object");
        return;
    }
    level *l = &json->levels[json->depth - 1];
    if (l->after_key) {
        misuse(json, "two JSON keys in a row");
        return;
    }
    if (l->count++) {
        put(json, ",", 1);
    }
    put_escaped(json, key ? key : "", key ? strlen(key) : 0);
    put(json, ":", 1);
    l->after_key = true;
}

void capsule_json_string_n(capsule_json *json, const char *value, size_t len) {
    if (!value) {
        capsule_json_null(json);
        return;
    }
    if (begin_value(json)) {
        put_escaped(json, value, len);
        end_value(json);
    }
}

void capsule_json_string(capsule_json *json, const char *value) {
    capsule_json_string_n(json, value, value ? strlen(value) : 0);
}

void capsule_json_int(capsule_json *json, int64_t value) {
    if (begin_value(json)) {
        char buffer[24];
        int n = snprintf(buffer, sizeof buffer, "%lld", (long long)value);
        put(json, buffer, (size_t)n);
        end_value(json);
    }
}

void capsule_json_uint(capsule_json *json, uint64_t value) {
    if (begin_value(json)) {
        char buffer[24];
        int n = snprintf(buffer, sizeof buffer, "%llu", (unsigned long long)value);
        put(json, buffer, (size_t)n);
        end_value(json);
    }
}

void capsule_json_number(capsule_json *json, double value) {
    if (!isfinite(value)) {
        capsule_json_null(json);
        return;
    }
    if (begin_value(json)) {
        char buffer[32];
        /* The shortest of %.15g / %.17g that reads back as the same double. */
        int n = snprintf(buffer, sizeof buffer, "%.15g", value);
        if (strtod(buffer, NULL) != value) {
            n = snprintf(buffer, sizeof buffer, "%.17g", value);
        }
        put(json, buffer, (size_t)n);
        end_value(json);
    }
}

void capsule_json_bool(capsule_json *json, bool value) {
    if (begin_value(json)) {
        put_str(json, value ? "true" : "false");
        end_value(json);
    }
}

void capsule_json_null(capsule_json *json) {
    if (begin_value(json)) {
        put_str(json, "null");
        end_value(json);
    }
}

void capsule_json_raw(capsule_json *json, const char *text, size_t len) {
    if (begin_value(json)) {
        put(json, text, len);
        end_value(json);
    }
}

const char *capsule_json_text(const capsule_json *json, size_t *len) {
    if (!json || json->error) {
        return NULL;
    }
    if (len) {
        *len = json->len;
    }
    return json->text ? json->text : "";
}

const char *capsule_json_error(const capsule_json *json) {
    if (!json) {
        return "out of memory";
    }
    if (json->error) {
        return json->error;
    }
    if (json->depth) {
        return "unfinished JSON value (an object or array was not ended)";
    }
    if (!json->done) {
        return "no JSON value was written";
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------------------- */

struct capsule_out {
    capsule_bytes *texts;
    size_t text_count;
    size_t text_capacity;
    capsule_json *structured;
    capsule_result verdict; /* set by capsule_fail / capsule_invalid */
    capsule_bytes message;
    bool out_of_memory;
};

capsule_result capsule_text_n(capsule_out *out, const char *text, size_t len) {
    if (out->text_count == out->text_capacity) {
        size_t more = out->text_capacity ? out->text_capacity * 2 : 4;
        capsule_bytes *grown = call_realloc(out->texts, more * sizeof(capsule_bytes));
        if (!grown) {
            out->out_of_memory = true;
            return CAPSULE_FAILED;
        }
        out->texts = grown;
        out->text_capacity = more;
    }
    capsule_bytes copy = capsule_utf8_sanitize(text ? text : "", text ? len : 0);
    if (!copy.ptr) {
        out->out_of_memory = true;
        return CAPSULE_FAILED;
    }
    out->texts[out->text_count++] = copy;
    return CAPSULE_OK;
}

capsule_result capsule_text(capsule_out *out, const char *text) {
    return capsule_text_n(out, text, text ? strlen(text) : 0);
}

capsule_result capsule_textf(capsule_out *out, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    size_t len = 0;
    char *text = format_v(format, ap, &len);
    va_end(ap);
    if (!text) {
        out->out_of_memory = true;
        return CAPSULE_FAILED;
    }
    return capsule_text_n(out, text, len);
}

capsule_json *capsule_structured(capsule_out *out) {
    if (!out->structured) {
        out->structured = capsule_json_new();
        if (!out->structured) {
            out->out_of_memory = true;
        }
    }
    return out->structured;
}

capsule_result capsule_done(capsule_out *out) {
    (void)out;
    return CAPSULE_OK;
}

static capsule_result set_error(capsule_out *out, capsule_result verdict, const char *format,
                                va_list ap) {
    size_t len = 0;
    char *text = format_v(format, ap, &len);
    out->verdict = verdict;
    if (text) {
        out->message = capsule_utf8_sanitize(text, len);
    }
    return verdict;
}

capsule_result capsule_fail(capsule_out *out, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    capsule_result r = set_error(out, CAPSULE_FAILED, format, ap);
    va_end(ap);
    return r;
}

capsule_result capsule_invalid(capsule_out *out, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    capsule_result r = set_error(out, CAPSULE_INVALID, format, ap);
    va_end(ap);
    return r;
}

/* ---------------------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------------------- */

static const char NO_ARGUMENTS[] =
    "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";

const char *capsule_tool_input_schema(const capsule_tool *tool) {
    return tool->input_schema ? tool->input_schema : NO_ARGUMENTS;
}

/* An error output whose message is printf-formatted into call memory. */
static capsule_call_output error_output(capsule_status status, const char *format, ...)
    CAPSULE_PRINTF(2, 3);

static capsule_call_output error_output(capsule_status status, const char *format, ...) {
    capsule_call_output result;
    memset(&result, 0, sizeof result);
    result.status = status;
    va_list ap;
    va_start(ap, format);
    size_t len = 0;
    char *text = format_v(format, ap, &len);
    va_end(ap);
    if (text) {
        result.message = capsule_utf8_sanitize(text, len);
    }
    if (!result.message.ptr) {
        result.message = (capsule_bytes){"out of memory", 13};
    }
    return result;
}

capsule_call_output capsule_call(const capsule_plugin *plugin, const char *name, size_t name_len,
                                 const char *arguments, size_t arguments_len) {
    const capsule_tool *tool = NULL;
    for (size_t i = 0; i < plugin->count; i++) {
        const char *candidate = plugin->tools[i].name;
        if (candidate && strlen(candidate) == name_len && memcmp(candidate, name, name_len) == 0) {
            tool = &plugin->tools[i];
            break;
        }
    }
    if (!tool || !tool->run) {
        capsule_call_output result;
        memset(&result, 0, sizeof result);
        result.status = CAPSULE_STATUS_UNKNOWN_TOOL;
        result.message = capsule_utf8_sanitize(name, name_len);
        return result;
    }

    const char *error = NULL;
    size_t at = 0;
    capsule_args *args = parse_args(arguments, arguments_len, &error, &at);
    if (!args) {
        return error_output(CAPSULE_STATUS_INVALID,
                            "the arguments are not a JSON object: %s at byte %zu", error, at);
    }

    capsule_out out;
    memset(&out, 0, sizeof out);
    capsule_result verdict = tool->run(args, &out);
    if (out.verdict != CAPSULE_OK) {
        /* capsule_fail() / capsule_invalid() was called: that error wins, even when the
         * tool then returned something else. */
        verdict = out.verdict;
    }

    if (verdict == CAPSULE_INVALID || verdict == CAPSULE_FAILED) {
        capsule_status status =
            verdict == CAPSULE_INVALID ? CAPSULE_STATUS_INVALID : CAPSULE_STATUS_FAILED;
        if (out.message.ptr) {
            capsule_call_output result;
            memset(&result, 0, sizeof result);
            result.status = status;
            result.message = out.message;
            return result;
        }
        if (out.out_of_memory) {
            return error_output(status, "tool `%s` ran out of memory", tool->name);
        }
        return error_output(status, verdict == CAPSULE_INVALID ? "invalid arguments for tool `%s`"
                                                               : "tool `%s` failed",
                            tool->name);
    }
    if (verdict != CAPSULE_OK) {
        return error_output(CAPSULE_STATUS_FAILED, "tool `%s` returned an unknown result (%d)",
                            tool->name, (int)verdict);
    }
    if (out.out_of_memory) {
        return error_output(CAPSULE_STATUS_FAILED, "tool `%s` ran out of memory", tool->name);
    }

    capsule_call_output result;
    memset(&result, 0, sizeof result);
    result.status = CAPSULE_STATUS_OK;
    if (out.structured) {
        const char *problem = capsule_json_error(out.structured);
        size_t len = 0;
        const char *text = capsule_json_text(out.structured, &len);
        if (problem || !text) {
            return error_output(CAPSULE_STATUS_FAILED, "tool `%s` wrote bad structured JSON: %s",
                                tool->name, problem ? problem : "out of memory");
        }
        if (text[0] != '{') {
            return error_output(CAPSULE_STATUS_FAILED,
                                "tool `%s` wrote structured JSON that is not an object",
                                tool->name);
        }
        result.structured = (capsule_bytes){text, len};
        if (out.text_count == 0 && capsule_text_n(&out, text, len) != CAPSULE_OK) {
            return error_output(CAPSULE_STATUS_FAILED, "tool `%s` ran out of memory", tool->name);
        }
    } else if (tool->output_schema) {
        return error_output(CAPSULE_STATUS_FAILED,
                            "tool `%s` declares an output schema but returned no structured "
                            "result (use capsule_structured)",
                            tool->name);
    }
    result.texts = out.texts;
    result.text_count = out.text_count;
    return result;
}

/* ---------------------------------------------------------------------------------------
 * Host imports
 * ------------------------------------------------------------------------------------- */

void capsule_log(capsule_level level, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    size_t len = 0;
    char *text = format_v(format, ap, &len);
    va_end(ap);
    if (text) {
        capsule_bytes clean = capsule_utf8_sanitize(text, len);
        if (clean.ptr) {
            capsule_host_log(level, clean.ptr, clean.len);
        }
    }
}

const char *capsule_config(const char *key) {
    if (!key) {
        return NULL;
    }
    capsule_bytes clean = capsule_utf8_sanitize(key, strlen(key));
    return clean.ptr ? capsule_host_config(clean.ptr, clean.len) : NULL;
}

void capsule_progress(double done, double total, const char *message) {
    if (!message) {
        capsule_host_progress(done, total, NULL, 0);
        return;
    }
    capsule_bytes clean = capsule_utf8_sanitize(message, strlen(message));
    if (clean.ptr) {
        capsule_host_progress(done, total, clean.ptr, clean.len);
    }
}

bool capsule_cancelled(void) { return capsule_host_cancelled(); }

const capsule_principal *capsule_caller(void) { return capsule_host_caller(); }

bool capsule_caller_has_scope(const char *scope) {
    const capsule_principal *caller = capsule_host_caller();
    if (!caller || !scope) {
        return false;
    }
    for (size_t i = 0; i < caller->scope_count; i++) {
        if (strcmp(caller->scopes[i], scope) == 0) {
            return true;
        }
    }
    return false;
}
