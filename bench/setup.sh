#!/usr/bin/env bash
# Creates the virtual environments of Karak's benchmark peers, outside the repository,
# under ${KARAK_CACHE:-~/.cache/karak}/bench/. Idempotent: a venv whose stamp matches the
# wanted specification is left alone, so a second run takes well under a second.
#
#   karak313t   Karak on free-threaded 3.13t: pydantic, and the repository's src/ on the
#               path (the extension `make` built there: same ABI, same version)
#   seed313t    the seed's pure-Python karak 0.1.0 on free-threaded 3.13t
#   fastapi311  FastAPI + uvicorn[standard] (uvloop, httptools) on CPython 3.11
#   granian311  Granian (bare WSGI/RSGI callables) on CPython 3.11
#   driver311   the driver's own tools (matplotlib for the charts)
#
# The interpreters are of one kind: each built with profile-guided and link-time
# optimisation. CPython 3.11 is Debian's own python3.11 (Debian builds it so on amd64);
# 3.13t is built here from Debian's python3.13 source with the same two optimisations
# (scripts/build-python-ft.sh --optimized, about 16 minutes, once per machine). The
# tests' 3.13t (a plain -O3 build) and pyenv's 3.11 (a shared library, no PGO) run
# Python about a fifth more slowly, and which peer got which would decide ratios.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${KARAK_CACHE:-$HOME/.cache/karak}"
BENCH="$CACHE/bench"
PY311="${KARAK_BENCH_PY311:-/usr/bin/python3.11}"
PY313T="${KARAK_BENCH_PY313T:-$CACHE/python3.13t-opt/bin/python3.13t}"
mkdir -p "$BENCH"

# pip_install VENV ARGS...: quiet, and without the warnings a machine-wide pip.conf may
# print about local indexes that do not exist.
pip_install() {
  local dir="$1"; shift
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# make_venv NAME PYTHON STEP...
# Each STEP is one `pip install` argument string. The venv is rebuilt from scratch when
# its stamp (interpreter + steps) differs from what is wanted.
make_venv() {
  local name="$1" py="$2"; shift 2
  local dir="$BENCH/$name" stamp="$BENCH/$name/.karak-bench-stamp"
  local want; want="$("$py" -c 'import sys; print(sys.version)' | head -1)|$*"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  echo "bench/setup.sh: creating $dir" >&2
  rm -rf "$dir"
  "$py" -m venv "$dir"
  pip_install "$dir" --upgrade pip
  local step
  for step in "$@"; do
    # shellcheck disable=SC2086  # each step is a word list on purpose
    pip_install "$dir" $step
  done
  "$dir/bin/python" -m pip freeze --disable-pip-version-check > "$dir/.karak-bench-freeze"
  echo "$want" > "$stamp"
}

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  echo "bench/setup.sh: wrk and nginx are needed (scripts/setup-system.sh installs them)" >&2
  exit 1
fi
if [ -z "${KARAK_BENCH_PY313T:-}" ]; then
  bash "$ROOT/scripts/build-python-ft.sh" --optimized
fi
for py in "$PY313T" "$PY311"; do
  if [ ! -x "$py" ]; then
    echo "bench/setup.sh: no interpreter at $py (scripts/setup-system.sh installs Debian's" \
      "python3.11; scripts/build-python-ft.sh --optimized builds 3.13t)" >&2
    exit 1
  fi
done

# Karak: the extension is the one `make` builds into src/karak/ with the tests' 3.13t, the
# same CPython version and ABI (cpython-313t); only the interpreter running it differs.
make_venv karak313t "$PY313T" \
  "--only-binary=:all: pydantic==2.12.3 pydantic-core==2.41.4"
site="$("$BENCH/karak313t/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
echo "$ROOT/src" > "$site/karak-repo.pth"

# The seed asks for pydantic>=2.12.5, which has no cp313t wheel: 2.12.3 (pydantic-core
# 2.41.4) is the newest that installs from wheels on 3.13t, and the seed runs with it.
make_venv seed313t "$PY313T" \
  "--only-binary=:all: pydantic==2.12.3 pydantic-core==2.41.4" \
  "--no-deps karak==0.1.0"

make_venv fastapi311 "$PY311" \
  "--only-binary=:all: fastapi==0.165.0 uvicorn[standard]==0.54.0 pydantic==2.12.3 pydantic-core==2.41.4"

make_venv granian311 "$PY311" \
  "--only-binary=:all: granian[uvloop]==2.8.7 pydantic==2.12.3 pydantic-core==2.41.4"

make_venv driver311 "$PY311" \
  "--only-binary=:all: matplotlib==3.11.2"

echo "bench/setup.sh: peers ready under $BENCH (driver: $BENCH/driver311/bin/python)" >&2
