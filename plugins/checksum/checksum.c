/*
 * checksum: checksums, hashes and encodings a model should compute, not guess.
 *
 * Tools: crc32, adler32, fnv1a, sha256 (hex digests of some data), checksums (all of them at
 * once, as structured output), base64_encode, base64_decode, hexdump. The data is text by
 * default; `encoding` lets a caller pass bytes as hex or base64 instead.
 */
#include "capsule_tool.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Algorithms
 * ------------------------------------------------------------------------------------- */

static uint32_t crc32_of(const unsigned char *data, size_t len) {
    static uint32_t table[256];
    static bool ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            table[i] = c;
        }
        ready = true;
    }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    }
    return crc ^ 0xFFFFFFFFu;
}

static uint32_t adler32_of(const unsigned char *data, size_t len) {
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < len; i++) {
        a = (a + data[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return (b << 16) | a;
}

static uint32_t fnv1a32_of(const unsigned char *data, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ data[i]) * 16777619u;
    }
    return h;
}

static uint64_t fnv1a64_of(const unsigned char *data, size_t len) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ data[i]) * 1099511628211ull;
    }
    return h;
}

/* SHA-256 (FIPS 180-4). */
static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                      K256[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

/* The lowercase hex SHA-256 of data into hex[65]. */
static void sha256_hex(const unsigned char *data, size_t len, char hex[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t full = len / 64;
    for (size_t i = 0; i < full; i++) {
        sha256_block(h, data + 64 * i);
    }
    unsigned char tail[128] = {0};
    size_t rest = len - 64 * full;
    memcpy(tail, data + 64 * full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) {
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    }
    sha256_block(h, tail);
    if (tail_len == 128) {
        sha256_block(h, tail + 64);
    }
    for (int i = 0; i < 8; i++) {
        snprintf(hex + 8 * i, 9, "%08x", h[i]);
    }
}

/* ---------------------------------------------------------------------------------------
 * Base64 and hex
 * ------------------------------------------------------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Base64 of data into call memory (NUL-terminated), or NULL when out of memory. */
static char *base64_encode(const unsigned char *data, size_t len, bool url_safe, bool pad) {
    const char *alphabet = url_safe ? B64URL : B64;
    if (len > SIZE_MAX / 2) {
        return NULL;
    }
    char *out = capsule_alloc((len + 2) / 3 * 4 + 1);
    if (!out) {
        return NULL;
    }
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len) {
            out[o++] = alphabet[(v >> 6) & 63];
        } else if (pad) {
            out[o++] = '=';
        }
        if (pad) {
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return out;
}

static int base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Decodes standard or URL-safe base64 (padding optional, whitespace ignored) into call
 * memory. On bad input returns NULL and describes the problem in `error`. */
static unsigned char *base64_decode(const char *text, size_t len, size_t *out_len, char *error,
                                    size_t error_size) {
    unsigned char *out = capsule_alloc(len / 4 * 3 + 3);
    if (!out) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    size_t o = 0, symbols = 0, padding = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (is_space(c)) {
            continue;
        }
        if (c == '=') {
            padding++;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || padding) {
            if (padding) {
                snprintf(error, error_size,
                         "invalid base64: data after the `=` padding at position %zu", i);
            } else if (c >= 0x20 && c < 0x7f) {
                snprintf(error, error_size, "invalid base64: character '%c' at position %zu", c,
                         i);
            } else {
                snprintf(error, error_size, "invalid base64: byte 0x%02x at position %zu", c, i);
            }
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++symbols % 4 == 0) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    size_t rest = symbols % 4;
    if (rest == 1) {
        snprintf(error, error_size,
                 "invalid base64: %zu symbols is not a valid length (one too many, or the "
                 "data was cut)",
                 symbols);
        return NULL;
    }
    if (padding && (rest == 0 || rest + padding != 4)) {
        snprintf(error, error_size, "invalid base64: wrong amount of `=` padding");
        return NULL;
    }
    if (rest == 2) {
        out[o++] = (unsigned char)(acc >> 4);
    } else if (rest == 3) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *out_len = o;
    return out;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex digits (whitespace and an optional 0x prefix ignored) into call memory. */
static unsigned char *hex_decode(const char *text, size_t len, size_t *out_len, char *error,
                                 size_t error_size) {
    if (len >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        text += 2;
        len -= 2;
    }
    unsigned char *out = capsule_alloc(len / 2 + 1);
    if (!out) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    size_t o = 0, digits = 0;
    int high = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (is_space(c)) {
            continue;
        }
        int v = hex_value(c);
        if (v < 0) {
            snprintf(error, error_size, "invalid hex: character '%c' at position %zu",
                     c >= 0x20 && c < 0x7f ? c : '?', i);
            return NULL;
        }
        if (digits++ % 2 == 0) {
            high = v;
        } else {
            out[o++] = (unsigned char)(high << 4 | v);
        }
    }
    if (digits % 2) {
        snprintf(error, error_size, "invalid hex: odd number of digits (%zu)", digits);
        return NULL;
    }
    *out_len = o;
    return out;
}

/* ---------------------------------------------------------------------------------------
 * Tools
 * ------------------------------------------------------------------------------------- */

/* The bytes of the `text` argument, decoded as its `encoding` says. */
typedef struct data {
    const unsigned char *bytes;
    size_t len;
} data;

/* Reads `text` + `encoding`; on failure fills `out` with the error and returns false. */
static bool input_data(const capsule_args *args, capsule_out *out, data *d,
                       capsule_result *verdict) {
    size_t len = 0;
    const char *text = capsule_arg_string(args, "text", &len);
    if (!text) {
        *verdict = capsule_invalid(out, "`text` is required");
        return false;
    }
    const char *encoding = capsule_arg_string_or(args, "encoding", "utf8");
    char error[160];
    if (strcmp(encoding, "utf8") == 0) {
        d->bytes = (const unsigned char *)text;
        d->len = len;
        return true;
    }
    unsigned char *bytes = NULL;
    if (strcmp(encoding, "hex") == 0) {
        bytes = hex_decode(text, len, &d->len, error, sizeof error);
    } else if (strcmp(encoding, "base64") == 0) {
        bytes = base64_decode(text, len, &d->len, error, sizeof error);
    } else {
        *verdict = capsule_invalid(out, "`encoding` must be utf8, hex or base64, not \"%s\"",
                                   encoding);
        return false;
    }
    if (!bytes) {
        *verdict = capsule_fail(out, "`text` is not %s: %s", encoding, error);
        return false;
    }
    d->bytes = bytes;
    return true;
}

/* The input schema of the tools that take just some data. */
#define DATA_SCHEMA                                                                            \
    CAPSULE_JSON({                                                                             \
        "type": "object",                                                                      \
        "properties": {                                                                        \
            "text": {"type": "string", "description": "The data: text (its UTF-8 bytes), or hex / base64 when `encoding` says so."}, \
            "encoding": {"type": "string", "enum": ["utf8", "hex", "base64"], "default": "utf8", "description": "How `text` gives the bytes: utf8 (the text itself, default), hex digits, or base64."} \
        },                                                                                     \
        "required": ["text"],                                                                  \
        "additionalProperties": false                                                          \
    })

static capsule_result crc32_tool(const capsule_args *args, capsule_out *out) {
    data d;
    capsule_result verdict;
    if (!input_data(args, out, &d, &verdict)) {
        return verdict;
    }
    return capsule_textf(out, "%08x", (unsigned)crc32_of(d.bytes, d.len));
}

static capsule_result adler32_tool(const capsule_args *args, capsule_out *out) {
    data d;
    capsule_result verdict;
    if (!input_data(args, out, &d, &verdict)) {
        return verdict;
    }
    return capsule_textf(out, "%08x", (unsigned)adler32_of(d.bytes, d.len));
}

static capsule_result fnv1a_tool(const capsule_args *args, capsule_out *out) {
    data d;
    capsule_result verdict;
    if (!input_data(args, out, &d, &verdict)) {
        return verdict;
    }
    int64_t bits = capsule_arg_int_or(args, "bits", 32);
    if (bits == 32) {
        return capsule_textf(out, "%08x", (unsigned)fnv1a32_of(d.bytes, d.len));
    }
    if (bits == 64) {
        return capsule_textf(out, "%016llx", (unsigned long long)fnv1a64_of(d.bytes, d.len));
    }
    return capsule_invalid(out, "`bits` must be 32 or 64, not %lld", (long long)bits);
}

static capsule_result sha256_tool(const capsule_args *args, capsule_out *out) {
    data d;
    capsule_result verdict;
    if (!input_data(args, out, &d, &verdict)) {
        return verdict;
    }
    char hex[65];
    sha256_hex(d.bytes, d.len, hex);
    return capsule_text(out, hex);
}

static capsule_result checksums_tool(const capsule_args *args, capsule_out *out) {
    data d;
    capsule_result verdict;
    if (!input_data(args, out, &d, &verdict)) {
        return verdict;
    }
    char hex[65], sha[65];
    capsule_json *j = capsule_structured(out);
    capsule_json_object_begin(j);
    capsule_json_key(j, "bytes");
    capsule_json_uint(j, d.len);
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc32_of(d.bytes, d.len));
    capsule_json_key(j, "crc32");
    capsule_json_string(j, hex);
    snprintf(hex, sizeof hex, "%08x", (unsigned)adler32_of(d.bytes, d.len));
    capsule_json_key(j, "adler32");
    capsule_json_string(j, hex);
    snprintf(hex, sizeof hex, "%08x", (unsigned)fnv1a32_of(d.bytes, d.len));
    capsule_json_key(j, "fnv1a_32");
    capsule_json_string(j, hex);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a64_of(d.bytes, d.len));
    capsule_json_key(j, "fnv1a_64");
    capsule_json_string(j, hex);
    sha256_hex(d.bytes, d.len, sha);
    capsule_json_key(j, "sha256");
    capsule_json_string(j, sha);
    capsule_json_object_end(j);
    return capsule_done(out);
}

static capsule_result base64_encode_tool(const capsule_args *args, capsule_out *out) {
    data d;
    capsule_result verdict;
    if (!input_data(args, out, &d, &verdict)) {
        return verdict;
    }
    bool url_safe = capsule_arg_bool_or(args, "url_safe", false);
    bool pad = capsule_arg_bool_or(args, "padding", !url_safe);
    char *encoded = base64_encode(d.bytes, d.len, url_safe, pad);
    if (!encoded) {
        return capsule_fail(out, "the data is too large to encode");
    }
    return capsule_text(out, encoded);
}

static capsule_result base64_decode_tool(const capsule_args *args, capsule_out *out) {
    size_t len = 0;
    const char *text = capsule_arg_string(args, "base64", &len);
    if (!text) {
        return capsule_invalid(out, "`base64` is required");
    }
    const char *as = capsule_arg_string_or(args, "output", "text");
    char error[160];
    size_t n = 0;
    unsigned char *bytes = base64_decode(text, len, &n, error, sizeof error);
    if (!bytes) {
        return capsule_fail(out, "%s", error);
    }
    if (strcmp(as, "hex") == 0) {
        char *hex = capsule_alloc(n * 2 + 1);
        if (!hex) {
            return capsule_fail(out, "the data is too large to decode");
        }
        for (size_t i = 0; i < n; i++) {
            snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
        }
        hex[2 * n] = '\0';
        return capsule_text_n(out, hex, 2 * n);
    }
    if (strcmp(as, "text") != 0) {
        return capsule_invalid(out, "`output` must be text or hex, not \"%s\"", as);
    }
    if (!capsule_utf8_valid((const char *)bytes, n)) {
        return capsule_fail(out,
                            "the decoded %zu bytes are binary, not UTF-8 text; call again with "
                            "\"output\": \"hex\" to see them",
                            n);
    }
    return capsule_text_n(out, (const char *)bytes, n);
}

/* At most this many bytes are dumped, so the output stays readable. */
#define HEXDUMP_LIMIT 4096

static capsule_result hexdump_tool(const capsule_args *args, capsule_out *out) {
    data d;
    capsule_result verdict;
    if (!input_data(args, out, &d, &verdict)) {
        return verdict;
    }
    size_t shown = d.len < HEXDUMP_LIMIT ? d.len : HEXDUMP_LIMIT;
    /* Per 16-byte line: 8 offset + 2 + 16*3 + 1 + 2 + 16 + 1 newline = 78 bytes. */
    size_t lines = (shown + 15) / 16;
    char *dump = capsule_alloc(lines * 80 + 128);
    if (!dump) {
        return capsule_fail(out, "out of memory");
    }
    size_t o = 0;
    for (size_t line = 0; line < lines; line++) {
        size_t base = line * 16;
        o += (size_t)sprintf(dump + o, "%08zx  ", base);
        for (size_t i = 0; i < 16; i++) {
            if (base + i < shown) {
                o += (size_t)sprintf(dump + o, "%02x ", d.bytes[base + i]);
            } else {
                o += (size_t)sprintf(dump + o, "   ");
            }
            if (i == 7) {
                dump[o++] = ' ';
            }
        }
        dump[o++] = ' ';
        dump[o++] = '|';
        for (size_t i = 0; i < 16 && base + i < shown; i++) {
            unsigned char c = d.bytes[base + i];
            dump[o++] = c >= 0x20 && c < 0x7f ? (char)c : '.';
        }
        dump[o++] = '|';
        dump[o++] = '\n';
    }
    if (shown < d.len) {
        o += (size_t)sprintf(dump + o, "... %zu more bytes not shown\n", d.len - shown);
    }
    o += (size_t)sprintf(dump + o, "%zu bytes", d.len);
    return capsule_text_n(out, dump, o);
}

/* ---------------------------------------------------------------------------------------
 * The tool table
 * ------------------------------------------------------------------------------------- */

static const capsule_tool TOOLS[] = {
    {
        .name = "crc32",
        .title = "CRC-32",
        .description = "CRC-32 (IEEE 802.3, as in zip, gzip and PNG) of some data, as 8 lowercase "
                       "hex digits. Example: \"123456789\" -> cbf43926.",
        .input_schema = DATA_SCHEMA,
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = crc32_tool,
    },
    {
        .name = "adler32",
        .title = "Adler-32",
        .description = "Adler-32 checksum (as in zlib) of some data, as 8 lowercase hex digits.",
        .input_schema = DATA_SCHEMA,
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = adler32_tool,
    },
    {
        .name = "fnv1a",
        .title = "FNV-1a hash",
        .description = "FNV-1a hash of some data (32-bit by default, or 64-bit), as lowercase "
                       "hex. A fast non-cryptographic hash, e.g. for hash tables or cache keys.",
        .input_schema = CAPSULE_JSON({
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The data: text (its UTF-8 bytes), or hex / base64 when `encoding` says so."},
                "encoding": {"type": "string", "enum": ["utf8", "hex", "base64"], "default": "utf8", "description": "How `text` gives the bytes: utf8 (the text itself, default), hex digits, or base64."},
                "bits": {"type": "integer", "enum": [32, 64], "default": 32, "description": "Hash width: 32 or 64 bits."}
            },
            "required": ["text"],
            "additionalProperties": false
        }),
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = fnv1a_tool,
    },
    {
        .name = "sha256",
        .title = "SHA-256",
        .description = "SHA-256 digest of some data, as 64 lowercase hex digits. Use it to "
                       "verify a download or compare content exactly.",
        .input_schema = DATA_SCHEMA,
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = sha256_tool,
    },
    {
        .name = "checksums",
        .title = "All checksums",
        .description = "Every checksum of some data at once: its length in bytes, CRC-32, "
                       "Adler-32, FNV-1a (32 and 64 bit) and SHA-256, all in lowercase hex.",
        .input_schema = DATA_SCHEMA,
        .output_schema = CAPSULE_JSON({
            "type": "object",
            "properties": {
                "bytes": {"type": "integer", "minimum": 0, "description": "Length of the data in bytes."},
                "crc32": {"type": "string"},
                "adler32": {"type": "string"},
                "fnv1a_32": {"type": "string"},
                "fnv1a_64": {"type": "string"},
                "sha256": {"type": "string"}
            },
            "required": ["bytes", "crc32", "adler32", "fnv1a_32", "fnv1a_64", "sha256"]
        }),
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = checksums_tool,
    },
    {
        .name = "base64_encode",
        .title = "Base64 encode",
        .description = "Encode data as base64 (RFC 4648): the standard alphabet with `=` "
                       "padding, or the URL-safe alphabet (- and _) without padding.",
        .input_schema = CAPSULE_JSON({
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The data: text (its UTF-8 bytes), or hex / base64 when `encoding` says so."},
                "encoding": {"type": "string", "enum": ["utf8", "hex", "base64"], "default": "utf8", "description": "How `text` gives the bytes: utf8 (the text itself, default), hex digits, or base64."},
                "url_safe": {"type": "boolean", "default": false, "description": "Use the URL- and filename-safe alphabet (- and _ instead of + and /)."},
                "padding": {"type": "boolean", "description": "Pad with `=` to a multiple of 4 characters (default: true, false when url_safe)."}
            },
            "required": ["text"],
            "additionalProperties": false
        }),
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = base64_encode_tool,
    },
    {
        .name = "base64_decode",
        .title = "Base64 decode",
        .description = "Decode base64 (standard or URL-safe alphabet, padding optional, "
                       "whitespace ignored) back to text, or to hex when the bytes are binary. "
                       "Invalid base64 is reported with the position of the first bad character.",
        .input_schema = CAPSULE_JSON({
            "type": "object",
            "properties": {
                "base64": {"type": "string", "description": "The base64 text to decode."},
                "output": {"type": "string", "enum": ["text", "hex"], "default": "text", "description": "text: the decoded bytes as UTF-8 text (fails on binary data); hex: the bytes as hex digits."}
            },
            "required": ["base64"],
            "additionalProperties": false
        }),
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = base64_decode_tool,
    },
    {
        .name = "hexdump",
        .title = "Hex dump",
        .description = "Show the bytes of some data as a hex dump (offset, 16 hex bytes, "
                       "printable ASCII per line, like `xxd` or `hexdump -C`), e.g. to find "
                       "invisible characters, a BOM or the UTF-8 encoding of a character. "
                       "Shows the first 4096 bytes.",
        .input_schema = DATA_SCHEMA,
        .read_only = CAPSULE_YES,
        .idempotent = CAPSULE_YES,
        .open_world = CAPSULE_NO,
        .run = hexdump_tool,
    },
};

CAPSULE_PLUGIN(TOOLS)
