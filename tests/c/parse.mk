# tests/c/parse.mk: the HTTP parser's C tests and fuzzers.
#
# Included by the top-level Makefile, or used alone from the repository root:
#   make -f tests/c/parse.mk ctest-parse                 vectors + unit tests, ASan+UBSan
#   make -f tests/c/parse.mk fuzz-smoke                  committed corpus + 20000 runs each (< 30 s)
#   make -f tests/c/parse.mk fuzz-parse FUZZ_SECONDS=300 fuzz each harness that long
# Outputs go under build/ctest and build/fuzz; the committed corpus is never written.

# Included, this file must not change the includer's default goal; alone,
# its default goal is ctest-parse.
KK_PARSE_GOAL := $(.DEFAULT_GOAL)

CC ?= cc
CLANG ?= clang
FUZZ_SECONDS ?= 60

KK_PARSE_DEPS := src/_karak/parse.c src/_karak/parse.h
KK_PARSE_SAN := -std=c11 -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all
KK_PARSE_FUZZ := -std=c11 -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer \
                 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
KK_PARSE_DICT := tests/fuzz/corpus/http.dict
KK_PARSE_FUZZERS := build/fuzz/fuzz_parse build/fuzz/fuzz_chunked

.PHONY: ctest-parse fuzz-parse fuzz-smoke

build/ctest/test_parse: tests/c/test_parse.c $(KK_PARSE_DEPS)
	@mkdir -p $(@D)
	$(CC) $(KK_PARSE_SAN) -o $@ tests/c/test_parse.c

ctest-parse: build/ctest/test_parse
	build/ctest/test_parse tests/vectors/http

build/fuzz/fuzz_parse: tests/c/fuzz_parse.c $(KK_PARSE_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(KK_PARSE_FUZZ) -o $@ tests/c/fuzz_parse.c

build/fuzz/fuzz_chunked: tests/c/fuzz_chunked.c $(KK_PARSE_DEPS)
	@mkdir -p $(@D)
	$(CLANG) $(KK_PARSE_FUZZ) -o $@ tests/c/fuzz_chunked.c

# Each harness: replay the committed corpus, then 20000 new inputs. New inputs go
# to a scratch directory listed first, so the committed corpus stays as it is.
fuzz-smoke: $(KK_PARSE_FUZZERS)
	@set -e; for f in parse chunked; do \
	  rm -rf build/fuzz/smoke-$$f; mkdir -p build/fuzz/smoke-$$f build/fuzz/artifacts; \
	  build/fuzz/fuzz_$$f -runs=0 -artifact_prefix=build/fuzz/artifacts/$$f- \
	    tests/fuzz/corpus/$$f; \
	  build/fuzz/fuzz_$$f -runs=20000 -seed=1 -dict=$(KK_PARSE_DICT) \
	    -artifact_prefix=build/fuzz/artifacts/$$f- build/fuzz/smoke-$$f tests/fuzz/corpus/$$f; \
	done

# Each harness for FUZZ_SECONDS over build/fuzz/corpus/<name>, a working copy
# seeded from the committed corpus (kept between runs). Crashes land in
# build/fuzz/artifacts/.
fuzz-parse: $(KK_PARSE_FUZZERS)
	@set -e; for f in parse chunked; do \
	  mkdir -p build/fuzz/corpus/$$f build/fuzz/artifacts; \
	  cp -n tests/fuzz/corpus/$$f/* build/fuzz/corpus/$$f/ 2>/dev/null || true; \
	  build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -dict=$(KK_PARSE_DICT) -artifact_prefix=build/fuzz/artifacts/$$f- \
	    build/fuzz/corpus/$$f; \
	done

ifeq ($(words $(MAKEFILE_LIST)),1)
.DEFAULT_GOAL := ctest-parse
else
.DEFAULT_GOAL := $(KK_PARSE_GOAL)
endif
