/* capsule_testing.c — the host stand-ins and call helper of capsule_testing.h (native builds
 * only; the component uses capsule_wit.c instead). */
#include "capsule_testing.h"

#include <stdio.h>
#include <string.h>

#define MAX_CONFIG 32
#define RESULT_BYTES 4096

static struct {
    char key[64];
    char value[256];
} config[MAX_CONFIG];
static size_t config_count;
static bool cancelled;
static char last_log[512];
static double last_progress = -1;
static char result[RESULT_BYTES];
static int passed, failed;

void capsule_host_log(capsule_level level, const char *message, size_t len) {
    (void)level;
    snprintf(last_log, sizeof last_log, "%.*s", (int)len, message);
}

const char *capsule_host_config(const char *key, size_t key_len) {
    for (size_t i = 0; i < config_count; i++) {
        if (strlen(config[i].key) == key_len && memcmp(config[i].key, key, key_len) == 0) {
            return capsule_strndup(config[i].value, strlen(config[i].value));
        }
    }
    return NULL;
}

void capsule_host_progress(double done, double total, const char *message, size_t len) {
    (void)total;
    (void)message;
    (void)len;
    last_progress = done;
}

bool capsule_host_cancelled(void) { return cancelled; }

#define MAX_SCOPES 16
static struct {
    bool set;
    char name[128];
    char scopes[MAX_SCOPES][64];
    const char *scope_ptrs[MAX_SCOPES];
    capsule_principal principal;
} caller;

const capsule_principal *capsule_host_caller(void) {
    return caller.set ? &caller.principal : NULL;
}

void capsule_test_set_caller(const char *name, const char *const *scopes) {
    caller.set = name != NULL;
    if (!name) {
        return;
    }
    snprintf(caller.name, sizeof caller.name, "%s", name);
    size_t count = 0;
    while (scopes && scopes[count] && count < MAX_SCOPES) {
        snprintf(caller.scopes[count], sizeof caller.scopes[count], "%s", scopes[count]);
        caller.scope_ptrs[count] = caller.scopes[count];
        count++;
    }
    caller.principal.name = caller.name;
    caller.principal.scopes = caller.scope_ptrs;
    caller.principal.scope_count = count;
}

void capsule_test_set_config(const char *key, const char *value) {
    size_t i = 0;
    while (i < config_count && strcmp(config[i].key, key) != 0) {
        i++;
    }
    if (!value) {
        if (i < config_count) {
            config[i] = config[--config_count];
        }
        return;
    }
    if (i == config_count) {
        if (config_count == MAX_CONFIG) {
            fprintf(stderr, "capsule_test_set_config: more than %d keys\n", MAX_CONFIG);
            return;
        }
        config_count++;
    }
    snprintf(config[i].key, sizeof config[i].key, "%s", key);
    snprintf(config[i].value, sizeof config[i].value, "%s", value);
}

void capsule_test_set_cancelled(bool value) { cancelled = value; }

const char *capsule_test_last_log(void) { return last_log; }

double capsule_test_last_progress(void) { return last_progress; }

static const char *kind_of(capsule_status status) {
    switch (status) {
    case CAPSULE_STATUS_INVALID:
        return "invalid-arguments";
    case CAPSULE_STATUS_FAILED:
        return "failed";
    case CAPSULE_STATUS_UNKNOWN_TOOL:
        return "unknown-tool";
    default:
        return "ok";
    }
}

const char *capsule_test_run(const char *name, const char *arguments) {
    capsule_call_output out = capsule_call(&capsule_plugin_definition, name, strlen(name),
                                           arguments, strlen(arguments));
    if (out.status != CAPSULE_STATUS_OK) {
        snprintf(result, sizeof result, "%s: %.*s", kind_of(out.status), (int)out.message.len,
                 out.message.ptr);
    } else if (out.text_count > 0) {
        snprintf(result, sizeof result, "%.*s", (int)out.texts[0].len, out.texts[0].ptr);
    } else if (out.structured.ptr) {
        snprintf(result, sizeof result, "%.*s", (int)out.structured.len, out.structured.ptr);
    } else {
        result[0] = '\0';
    }
    capsule_call_end();
    return result;
}

bool capsule_test_streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

void capsule_test_check(bool ok, const char *what, const char *actual, const char *expected,
                        const char *file, int line) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
    if (expected) {
        fprintf(stderr, "  got:      %s\n  expected: %s\n", actual ? actual : "(null)", expected);
    }
}

int capsule_test_summary(void) {
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
