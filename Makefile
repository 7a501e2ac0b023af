# Karak: every command a developer or CI needs. `make run` and `make test` set up
# everything on a fresh Debian 12 machine first (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

KARAK_CACHE ?= $(HOME)/.cache/karak
export KARAK_CACHE
PY_FT  := $(KARAK_CACHE)/python3.13t/bin/python3.13t
PY_TSAN := $(KARAK_CACHE)/python3.13t-tsan/bin/python3.13t
PY_GIL ?= python3
VENV    := .venv
VENV311 := .venv311
VENVTSAN := .venv-tsan
PIP_FLAGS := --disable-pip-version-check -q --only-binary=:all:
DEV_DEPS := pydantic==2.12.3 pytest hypothesis setuptools wheel
C_SOURCES := $(wildcard src/_karak/*.c src/_karak/*.h) setup.py

PHONY_EXTRA := ctest-buf test-asan test-tsan python-tsan
.PHONY: $(PHONY_EXTRA) help setup system python-ft build run test test-c test-py test-py311 fuzz fuzz-smoke bench bench-quick soak clean

help:
	@echo "make run    set up, then serve examples/basic.py on 127.0.0.1:8000"
	@echo "make test   set up, then run every test (C under ASan/UBSan, pytest on 3.13t and 3.11)"
	@echo "make bench  the benchmark suite (bench/README.md)"
	@echo "make fuzz   libFuzzer on the parser (FUZZ_SECONDS=60)"

## ---- set-up -------------------------------------------------------------
system:
	@bash scripts/setup-system.sh

python-ft: system
	@bash scripts/build-python-ft.sh

$(VENV)/.deps: pyproject.toml | python-ft
	@test -x $(VENV)/bin/python || $(PY_FT) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install $(PIP_FLAGS) $(DEV_DEPS)
	@touch $@

# ThreadSanitizer: a second free-threaded 3.13, built by clang with
# --with-thread-sanitizer (once per machine, about 6 minutes), so that TSan
# sees the interpreter's own atomics and locks.
python-tsan: system
	@bash scripts/build-python-ft.sh --tsan

$(VENVTSAN)/.deps: pyproject.toml | python-tsan
	@test -x $(VENVTSAN)/bin/python || $(PY_TSAN) -m venv $(VENVTSAN)
	@$(VENVTSAN)/bin/python -m pip install $(PIP_FLAGS) $(DEV_DEPS)
	@touch $@

$(VENV311)/.deps: pyproject.toml | system
	@$(PY_GIL) -c 'import sys; assert sys.version_info >= (3, 11), sys.version'
	@test -x $(VENV311)/bin/python || $(PY_GIL) -m venv $(VENV311)
	@$(VENV311)/bin/python -m pip install $(PIP_FLAGS) $(DEV_DEPS)
	@touch $@

# The package's own PEP 517 build (setuptools) compiles the extension; editable
# installs put the .so beside the Python sources for both interpreters.
$(VENV)/.built: $(VENV)/.deps $(C_SOURCES)
	@$(VENV)/bin/python -m pip install $(PIP_FLAGS) --no-build-isolation --no-deps -e . >/dev/null
	@touch $@

$(VENV311)/.built: $(VENV311)/.deps $(C_SOURCES)
	@$(VENV311)/bin/python -m pip install $(PIP_FLAGS) --no-build-isolation --no-deps -e . >/dev/null
	@touch $@

setup: $(VENV)/.deps $(VENV311)/.deps
build: $(VENV)/.built $(VENV311)/.built

## ---- use ----------------------------------------------------------------
run: build
	$(VENV)/bin/python examples/basic.py

## ---- tests --------------------------------------------------------------
include tests/c/parse.mk
include tests/c/router.mk

CTEST_FLAGS := -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all

build/ctest/test_buf: tests/c/test_buf.c src/_karak/buf.c src/_karak/buf.h
	@mkdir -p build/ctest
	$(CC) $(CTEST_FLAGS) -I src/_karak src/_karak/buf.c tests/c/test_buf.c -o $@

ctest-buf: build/ctest/test_buf
	./build/ctest/test_buf

test-c: system ctest-buf ctest-parse ctest-router fuzz-smoke

test-py: $(VENV)/.built
	$(VENV)/bin/python -m pytest -q tests

test-py311: $(VENV311)/.built
	$(VENV311)/bin/python -m pytest -q tests

# The pytest suite once more against an extension built with ASan and UBSan
# (the sanitizer runtimes preloaded into the interpreter that serves).
ASAN_RT := $(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)
test-asan: $(VENV)/.built
	@rm -rf build/asan && mkdir -p build/asan/karak
	cp src/karak/*.py build/asan/karak/
	KARAK_SANITIZE=address,undefined $(VENV)/bin/python setup.py -q build_ext \
		--build-lib build/asan --build-temp build/asan-tmp >/dev/null
	PYTHONPATH=$(CURDIR)/build/asan LD_PRELOAD="$(ASAN_RT)" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests

# The threaded tests under ThreadSanitizer: the extension built by the TSan
# interpreter's clang with -fsanitize=thread, every server the tests start run
# on that interpreter. Each report goes to a file under build/tsan/reports; the
# target fails when there is any, and prints them. tests/tsan.supp says what is
# suppressed and why (CPython's own known races only).
TSAN_TESTS := tests/test_sharing.py tests/test_concurrency.py tests/test_shutdown.py \
	tests/test_deferred_writes.py tests/test_dependencies.py tests/test_timeouts.py \
	tests/test_limits.py tests/test_exhaustion.py tests/test_worker_start.py \
	tests/test_lifecycle.py tests/test_half_close.py tests/test_request.py \
	tests/test_responses.py tests/test_pool.py
test-tsan: $(VENVTSAN)/.deps
	@rm -rf build/tsan build/tsan-tmp && mkdir -p build/tsan/karak build/tsan/reports
	cp src/karak/*.py build/tsan/karak/
	KARAK_SANITIZE=thread $(VENVTSAN)/bin/python setup.py -q build_ext \
		--build-lib build/tsan --build-temp build/tsan-tmp >/dev/null 2>&1
	PYTHONPATH=$(CURDIR)/build/tsan \
		TSAN_OPTIONS="log_path=$(CURDIR)/build/tsan/reports/tsan suppressions=$(CURDIR)/tests/tsan.supp history_size=4" \
		$(VENVTSAN)/bin/python -m pytest -q -p no:cacheprovider $(TSAN_TESTS)
	@if ls build/tsan/reports/tsan.* >/dev/null 2>&1; then \
		cat build/tsan/reports/tsan.*; \
		echo "ThreadSanitizer: $$(cat build/tsan/reports/tsan.* | grep -c '^WARNING: ThreadSanitizer') report(s), above"; \
		exit 1; \
	fi
	@echo "ThreadSanitizer: no reports"

test: test-c test-py test-py311 test-asan test-tsan

fuzz: system fuzz-parse

## ---- benchmarks and soak ------------------------------------------------
SOAK_SECONDS ?= 180

# Not part of `make test`: minutes of mixed valid/malformed/slow clients, then
# 10,000 idle keep-alive connections (memory per connection reported).
soak: $(VENV)/.built
	$(VENV)/bin/python scripts/soak.py --seconds $(SOAK_SECONDS)
	$(VENV)/bin/python scripts/idle_conns.py

bench: build
	bash bench/setup.sh
	$(KARAK_CACHE)/bench/driver311/bin/python bench/run.py

bench-quick: build
	bash bench/setup.sh
	$(KARAK_CACHE)/bench/driver311/bin/python bench/run.py --quick

clean:
	rm -rf build $(VENV) $(VENV311) $(VENVTSAN) src/karak/*.so src/*.egg-info
