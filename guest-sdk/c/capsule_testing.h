/*
 * capsule_testing.h — native unit tests of a C plugin's tools, no wasm and no host needed.
 * Link the plugin's sources with capsule_tool.c and capsule_testing.c (which stands in for
 * the host: configuration, cancellation, log and progress capture) and call tools by name:
 *
 *     #include "capsule_testing.h"
 *     int main(void) {
 *         CAPSULE_CHECK_STR(capsule_test_run("greet", "{\"name\": \"Ada\"}"), "Hello, Ada!");
 *         return capsule_test_summary();
 *     }
 *
 * `make test` (capsule.mk) builds every test_*.c this way and runs it.
 */
#ifndef CAPSULE_TESTING_H
#define CAPSULE_TESTING_H

#include <stdbool.h>

#include "capsule_tool.h"

/* Runs tool `name` with the JSON argument text `arguments` and returns what it produced, as
 * one string valid until the next capsule_test_run: the first text block (or the structured
 * JSON when there is no text) on success, "<kind>: <message>" otherwise, where kind is
 * invalid-arguments, failed or unknown-tool. */
const char *capsule_test_run(const char *name, const char *arguments);

/* What capsule_config(key) returns in the tools under test (NULL value: unset). */
void capsule_test_set_config(const char *key, const char *value);
/* What capsule_caller() returns: NULL `name` for no caller, else the name and the scopes
 * (`scopes` NULL-terminated, at most 16). */
void capsule_test_set_caller(const char *name, const char *const *scopes);
/* What capsule_cancelled() returns. */
void capsule_test_set_cancelled(bool cancelled);
/* The message of the last capsule_log call ("" if none). */
const char *capsule_test_last_log(void);
/* The `done` value of the last capsule_progress call (-1 if none). */
double capsule_test_last_progress(void);

/* Records one check; prints the failure with its location. */
void capsule_test_check(bool ok, const char *what, const char *actual, const char *expected,
                        const char *file, int line);
/* Prints "N passed, M failed"; returns the process exit code (0 when all passed). */
int capsule_test_summary(void);

#define CAPSULE_CHECK(cond) capsule_test_check((cond), #cond, NULL, NULL, __FILE__, __LINE__)
#define CAPSULE_CHECK_STR(actual, expected)                                                    \
    capsule_test_check(capsule_test_streq((actual), (expected)), #actual, (actual), (expected), \
                       __FILE__, __LINE__)

bool capsule_test_streq(const char *a, const char *b);

#endif
