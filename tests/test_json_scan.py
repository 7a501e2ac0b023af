"""The JSON encoder's three block scanners (src/_karak/json.c, KK_JSON_SCAN).

The shipped extension only contains the scanner its compiler picks (SSE2 on x86-64),
so the portable ones (64-bit SWAR, byte by byte) would never run in the other tests.
Here json.c is built on its own (tests/c/json_scan_mod.c) once per scanner, with the
running interpreter's headers, and each build is checked against json.dumps on strings
that put every character that needs escaping at every offset of every length around
the block sizes (8 and 16) and the short-string path (under 16 bytes), as keys and as
values. Under `make test-asan` the builds are sanitized too.
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "_karak"
MOD = ROOT / "tests" / "c" / "json_scan_mod.c"

CHECK = r"""
import json, random, sys
import _json_scan

want_variant = int(sys.argv[1])
assert _json_scan.variant() == want_variant, (_json_scan.variant(), want_variant)

def ref(o):
    return json.dumps(o, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

def check(o):
    got = _json_scan.dumps(o)
    assert got == ref(o), (o, got, ref(o))

specials = ["\x00", "\x01", "\x08", "\t", "\n", "\x0c", "\r", "\x1f", " ", '"', "\\", "\x7f",
            "\x80", "\xe9", "\u2028", "\U0001f600"]
checked = 0
for special in specials:
    for n in range(0, 40):
        for pos in range(n + 1):
            s = "a" * pos + special + "b" * (n - pos)
            check(s)
            check({s: s})
            checked += 2
    check(special * 100)
    check("0123456789abcdef" * 3 + special * 37 + "0123456789abcdef" * 3)
for n in range(0, 40):
    check("x" * n)
    check({"k" * n: ["v" * n, n]})
rng = random.Random(4)
alphabet = specials + list("azAZ09_-/.")
for _ in range(3000):
    s = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 48)))
    check(s)
    check({s: [s, {s: s}]})
    checked += 2
print("checked", checked)
"""


def _build(variant: int, out: Path) -> None:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    flags = ["-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-std=c11",
             "-fno-strict-aliasing", f"-DKK_JSON_SCAN={variant}"]
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                  "-fno-omit-frame-pointer"]
    inc = sysconfig.get_paths()["include"]
    target = out / ("_json_scan" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [cc, *flags, f"-I{inc}", f"-I{SRC}", str(MOD), str(SRC / "json.c"),
           str(SRC / "buf.c"), "-o", str(target)]
    cc_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # not the compiler
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cc_env)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_scanner_matches_json_dumps(variant, tmp_path):
    if variant == 2 and platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the SSE2 scanner is built on x86-64 only")
    if variant == 1 and sys.byteorder != "little":
        pytest.skip("the SWAR scanner's first-byte search is little-endian")
    _build(variant, tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", CHECK, str(variant)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.startswith("checked "), proc.stdout
    assert int(proc.stdout.split()[1]) == 16 * 820 * 2 + 3000 * 2
