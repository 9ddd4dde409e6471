# capsule.mk — build rules for a Capsule tool plugin written in C. Include it from the
# project's Makefile after setting:
#   NAME     the plugin name; `make` writes $(NAME).wasm (the tools appear as NAME_<tool>)
#   SOURCES  the project's .c files
#   SDK      the folder holding capsule_tool.[ch], capsule_wit.c and bindings/ (default .)
#   WIT      wit/capsule.wit, the world the bindings were generated from (default
#            wit/capsule.wit)
# Optional: BUILD (intermediate files, default build), OUT (the component, default
# $(NAME).wasm), CFLAGS (default -O2), EXTRA_CFLAGS (added, e.g. -Werror).
#
# Needs clang with the wasm32-wasi sysroot (Debian: clang lld wasi-libc
# libclang-rt-14-dev-wasm32) and capsule-componentize on PATH (`cargo xtask` builds it).

SDK ?= .
BUILD ?= build
OUT ?= $(NAME).wasm
WIT ?= wit/capsule.wit
WASM_CC ?= clang
CFLAGS ?= -O2
COMPONENTIZE ?= capsule-componentize

# A wasip1 "reactor" module (a library with exports, no main), stripped of debug info.
WASM_FLAGS := --target=wasm32-wasi -mexec-model=reactor -std=c11 -Wall -Wextra
WASM_LDFLAGS := -Wl,--strip-debug
SDK_SOURCES := $(SDK)/capsule_tool.c $(SDK)/capsule_wit.c $(SDK)/bindings/plugin.c
SDK_HEADERS := $(SDK)/capsule_tool.h $(SDK)/bindings/plugin.h

$(OUT): $(BUILD)/$(NAME).core.wasm $(WIT)
	$(COMPONENTIZE) $< --wit $(WIT) -o $@

$(BUILD)/$(NAME).core.wasm: $(SOURCES) $(SDK_SOURCES) $(SDK_HEADERS)
	@mkdir -p $(BUILD)
	$(WASM_CC) $(WASM_FLAGS) $(CFLAGS) $(EXTRA_CFLAGS) -I$(SDK) $(WASM_LDFLAGS) \
		-o $@ $(SOURCES) $(SDK_SOURCES)

clean:
	rm -rf $(BUILD) $(OUT)

.PHONY: clean

# `make test`: the tools' unit tests (every test_*.c), built natively with the build
# machine's C compiler against capsule_testing.c (stand-ins for the host), then run.
TESTS ?= $(wildcard test_*.c)
TEST_CC ?= cc
TEST_BIN := $(BUILD)/test_$(NAME)

test: $(TEST_BIN)
	./$(TEST_BIN)

$(TEST_BIN): $(SOURCES) $(TESTS) $(SDK)/capsule_tool.c $(SDK)/capsule_testing.c $(SDK)/capsule_tool.h $(SDK)/capsule_testing.h
	@mkdir -p $(BUILD)
	$(TEST_CC) -std=c11 -Wall -Wextra -Werror -g -I$(SDK) -o $@ $(SOURCES) $(TESTS) \
		$(SDK)/capsule_tool.c $(SDK)/capsule_testing.c -lm

.PHONY: test
