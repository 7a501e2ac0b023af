# router.mk: build and run the router's C unit tests.
#
# Standalone:  make -f tests/c/router.mk ctest-router        (from the repo root)
# Included:    include tests/c/router.mk                      (from the top Makefile)
#
# Targets:
#   ctest-router        gcc/$(CC), ASan + UBSan, runs tests/vectors/router
#   ctest-router-tsan   the same tests under ThreadSanitizer
#   ctest-router-clang  the ASan + UBSan build with clang (skipped if clang is absent)
#   fuzz-router         libFuzzer harness (clang only); runs for ROUTER_FUZZ_SECONDS
# Every variable here starts with ROUTER_ so the including Makefile keeps its own,
# and including this file does not change the including Makefile's default goal.

ROUTER_SAVED_GOAL := $(.DEFAULT_GOAL)

ROUTER_BUILD     ?= build/ctest
ROUTER_VECTORS   ?= tests/vectors/router
ROUTER_SRC       := src/_karak/router.c src/_karak/router.h src/_karak/parse.h
ROUTER_TEST      := tests/c/test_router.c
ROUTER_CFLAGS    ?= -std=c11 -Wall -Wextra -Werror -g -O1 -pthread
ROUTER_SAN       ?= -fsanitize=address,undefined -fno-sanitize-recover=all
ROUTER_CLANG     ?= clang
ROUTER_FUZZ_SECONDS ?= 60

.PHONY: ctest-router ctest-router-tsan ctest-router-clang fuzz-router

$(ROUTER_BUILD)/test_router: $(ROUTER_TEST) $(ROUTER_SRC)
	@mkdir -p $(ROUTER_BUILD)
	$(CC) $(ROUTER_CFLAGS) $(ROUTER_SAN) -o $@ $(ROUTER_TEST)

$(ROUTER_BUILD)/test_router_tsan: $(ROUTER_TEST) $(ROUTER_SRC)
	@mkdir -p $(ROUTER_BUILD)
	$(CC) $(ROUTER_CFLAGS) -fsanitize=thread -o $@ $(ROUTER_TEST)

$(ROUTER_BUILD)/test_router_clang: $(ROUTER_TEST) $(ROUTER_SRC)
	@mkdir -p $(ROUTER_BUILD)
	$(ROUTER_CLANG) $(ROUTER_CFLAGS) $(ROUTER_SAN) -o $@ $(ROUTER_TEST)

$(ROUTER_BUILD)/fuzz_router: tests/c/fuzz_router.c $(ROUTER_SRC)
	@mkdir -p $(ROUTER_BUILD)
	$(ROUTER_CLANG) -std=c11 -Wall -Wextra -Werror -g -O1 \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o $@ tests/c/fuzz_router.c

ctest-router: $(ROUTER_BUILD)/test_router
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(ROUTER_BUILD)/test_router $(ROUTER_VECTORS)

ctest-router-tsan: $(ROUTER_BUILD)/test_router_tsan
	TSAN_OPTIONS=halt_on_error=1 $(ROUTER_BUILD)/test_router_tsan $(ROUTER_VECTORS)

ROUTER_HAVE_CLANG := $(shell command -v $(ROUTER_CLANG) 2>/dev/null)
ifneq ($(ROUTER_HAVE_CLANG),)
ctest-router-clang: $(ROUTER_BUILD)/test_router_clang
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 $(ROUTER_BUILD)/test_router_clang $(ROUTER_VECTORS)
else
ctest-router-clang:
	@echo "ctest-router-clang: $(ROUTER_CLANG) not installed, skipped"
endif

fuzz-router: $(ROUTER_BUILD)/fuzz_router
	@mkdir -p $(ROUTER_BUILD)/fuzz_router_corpus
	$(ROUTER_BUILD)/fuzz_router -max_total_time=$(ROUTER_FUZZ_SECONDS) -max_len=512 \
	    $(ROUTER_BUILD)/fuzz_router_corpus

# Restore the includer's default goal; standalone, the default is ctest-router.
ifeq ($(lastword $(MAKEFILE_LIST)),$(firstword $(MAKEFILE_LIST)))
.DEFAULT_GOAL := ctest-router
else
.DEFAULT_GOAL := $(ROUTER_SAVED_GOAL)
endif
