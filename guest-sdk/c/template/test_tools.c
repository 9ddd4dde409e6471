/* Unit tests of tools.c, built natively (no wasm) and run by `make test`. */
#include "capsule_testing.h"

int main(void) {
    CAPSULE_CHECK_STR(capsule_test_run("greet", "{\"name\": \"Ada\"}"), "Hello, Ada!");
    CAPSULE_CHECK_STR(capsule_test_last_log(), "greeting Ada");
    CAPSULE_CHECK_STR(capsule_test_run("greet", "{\"name\": \"\"}"),
                      "invalid-arguments: `name` must not be empty");
    return capsule_test_summary();
}
