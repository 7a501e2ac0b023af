#!/usr/bin/env bash
# Installs the Debian packages Karak's build, tests and benchmarks need, once per machine.
# Idempotent: a stamp file outside the repo records the package list that was installed.
set -euo pipefail

PKGS=(build-essential pkg-config curl clang llvm libclang-rt-14-dev
      libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev
      libreadline-dev uuid-dev libgdbm-dev libncurses-dev xz-utils
      wrk nginx-light python3.11 python3.11-venv)

CACHE="${KARAK_CACHE:-$HOME/.cache/karak}"
mkdir -p "$CACHE"
stamp="$CACHE/system-packages.stamp"
want="${PKGS[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# Only a source line for trixie: a binary line for a newer suite would upgrade libc.
src=/etc/apt/sources.list.d/karak-trixie-src.sources
if [ ! -f "$src" ]; then
  $SUDO tee "$src" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
echo "$want" > "$stamp"
