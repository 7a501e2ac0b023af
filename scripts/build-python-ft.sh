#!/usr/bin/env bash
# Builds a free-threaded CPython 3.13 (python3.13t) from Debian trixie's python3.13 source,
# once per machine, into $KARAK_CACHE (default ~/.cache/karak), outside the repo.
# Prints nothing when the cached interpreter is already there and works.
#
#   scripts/build-python-ft.sh              $CACHE/python3.13t: plain -O3 build (about 4
#                                           minutes), what the tests and `make run` use
#   scripts/build-python-ft.sh --optimized  $CACHE/python3.13t-opt: with profile-guided
#                                           optimisation and link-time optimisation, as
#                                           Debian builds its own pythons on amd64 (its
#                                           debian/rules: with_pgo, with_lto); about 16
#                                           minutes; what the benchmarks run Karak on, so
#                                           that it meets its peers on Debian's PGO+LTO
#                                           python3.11 with an interpreter of the same kind
#   scripts/build-python-ft.sh --tsan       $CACHE/python3.13t-tsan: built by clang with
#                                           ThreadSanitizer (--with-thread-sanitizer), so that
#                                           the interpreter's own atomics and locks are known
#                                           to TSan; what `make test-tsan` runs the threaded
#                                           tests on, with the extension built by the same
#                                           clang and -fsanitize=thread
set -euo pipefail

CACHE="${KARAK_CACHE:-$HOME/.cache/karak}"
PREFIX="$CACHE/python3.13t"
OPTS=()
WHAT="free-threaded CPython 3.13"
TIME="about 4 minutes"
if [ "${1:-}" = "--optimized" ]; then
  PREFIX="$CACHE/python3.13t-opt"
  OPTS=(--enable-optimizations --with-lto)
  WHAT="free-threaded CPython 3.13 with PGO and LTO"
  TIME="about 16 minutes"
elif [ "${1:-}" = "--tsan" ]; then
  PREFIX="$CACHE/python3.13t-tsan"
  OPTS=(--with-thread-sanitizer CC=clang CXX=clang++)
  WHAT="free-threaded CPython 3.13 with ThreadSanitizer"
  TIME="about 6 minutes"
fi
PY="$PREFIX/bin/python3.13t"
CHECK='import sys, ssl, sqlite3, zlib, ctypes, lzma, bz2; assert not sys._is_gil_enabled()'

if [ -x "$PY" ] && "$PY" -c "$CHECK" 2>/dev/null; then
  exit 0
fi

echo "==> building $WHAT into $PREFIX ($TIME, once per machine)"
work="$PREFIX.build"
rm -rf "$work"; mkdir -p "$work"; cd "$work"
apt-get source --download-only python3.13/trixie >/dev/null
tar xf python3.13_*.orig.tar.xz
cd Python-3.13*/
./configure --disable-gil "${OPTS[@]}" --prefix="$PREFIX" --with-ensurepip=install \
  >configure.log 2>&1
make -j"$(nproc)" >make.log 2>&1
make install >install.log 2>&1
"$PY" -c "$CHECK"
rm -rf "$work"
echo "==> $("$PY" -VV)"
