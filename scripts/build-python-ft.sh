#!/usr/bin/env bash
# Builds a free-threaded CPython 3.13 (python3.13t) from Debian trixie's python3.13 source,
# once per machine, into $KARAK_CACHE (default ~/.cache/karak), outside the repo.
# Prints nothing when the cached interpreter is already there and works.
set -euo pipefail

CACHE="${KARAK_CACHE:-$HOME/.cache/karak}"
PREFIX="$CACHE/python3.13t"
PY="$PREFIX/bin/python3.13t"
CHECK='import sys, ssl, sqlite3, zlib, ctypes, lzma, bz2; assert not sys._is_gil_enabled()'

if [ -x "$PY" ] && "$PY" -c "$CHECK" 2>/dev/null; then
  exit 0
fi

echo "==> building free-threaded CPython 3.13 into $PREFIX (about 4 minutes, once per machine)"
work="$CACHE/build-python"
rm -rf "$work"; mkdir -p "$work"; cd "$work"
apt-get source --download-only python3.13/trixie >/dev/null
tar xf python3.13_*.orig.tar.xz
cd Python-3.13*/
./configure --disable-gil --prefix="$PREFIX" --with-ensurepip=install >configure.log 2>&1
make -j"$(nproc)" >make.log 2>&1
make install >install.log 2>&1
"$PY" -c "$CHECK"
rm -rf "$work"
echo "==> $("$PY" -VV)"
