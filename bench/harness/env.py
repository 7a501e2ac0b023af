"""What the results are worth: the machine, every interpreter and every peer's version."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from .servers import ROOT

_VERSIONS = r"""
import json, sys, sysconfig
from importlib import metadata
out = {"python": sys.version.split()[0],
       "implementation": sys.implementation.name,
       "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
       "executable": sys.executable,
       "base_executable": getattr(sys, "_base_executable", sys.executable),
       "packages": {}}
for name in ("karak", "pydantic", "pydantic-core", "fastapi", "starlette", "uvicorn",
             "uvloop", "httptools", "granian", "matplotlib"):
    try:
        out["packages"][name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
if "karak" not in out["packages"]:  # bench/setup.sh's karak313t: the repository's src/ on the path
    try:
        import karak
        out["packages"]["karak"] = karak.__version__ + " (" + karak.__file__.rsplit("/", 2)[0] + ")"
    except ImportError:
        pass
print(json.dumps(out))
"""


def _first_line(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    text = (r.stdout + r.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def interpreter(python: Path) -> dict:
    """Version, build flavour and relevant package versions of one interpreter."""
    try:
        r = subprocess.run([str(python), "-c", _VERSIONS], capture_output=True, text=True,
                           timeout=60, cwd="/")
        return json.loads(r.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}


def machine() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    debian = ""
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": f"Debian {debian}" if debian else platform.platform(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "loadavg_start": list(os.getloadavg()),
    }


def tools() -> dict:
    return {"wrk": _first_line(["wrk", "-v"]), "nginx": _first_line(["nginx", "-v"])}


def repo() -> dict:
    """The commit measured (read-only git queries). Dirty means a tracked file other
    than the driver's own outputs (bench/results/, rewritten by every run) differs."""
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no",
                            "--", ".", ":(exclude)bench/results"],
                           capture_output=True, text=True, timeout=30).stdout.strip() != ""
    return {"commit": commit, "dirty": dirty}
