"""The servers under test: how each peer is started, watched, measured and stopped.

A `ServerConfig` is a recipe (argv, working directory, environment); a `Server` is one
running instance. Every server runs in its own session (`start_new_session`), so its
whole process tree - uvicorn's and Granian's worker processes, nginx's workers - can be
found by session id and killed together, even when the driver fails half-way.

Thread rules: none; the driver is single-threaded.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
APPS = BENCH / "apps"
CACHE = Path(os.environ.get("KARAK_CACHE", Path.home() / ".cache" / "karak"))
VENVS = CACHE / "bench"
# Karak runs on bench/setup.sh's PGO+LTO 3.13t (its karak313t venv puts the repository's src/
# on the path); KARAK_BENCH_KARAK_PYTHON=.venv/bin/python runs it on the tests' plain build.
KARAK_PYTHON = Path(os.environ.get("KARAK_BENCH_KARAK_PYTHON", VENVS / "karak313t" / "bin" / "python"))
SEED_PYTHON = VENVS / "seed313t" / "bin" / "python"
FASTAPI_PYTHON = VENVS / "fastapi311" / "bin" / "python"
# KARAK_BENCH_GRANIAN_VENV=granian313t runs Granian on 3.13t instead (a venv made by hand).
GRANIAN_VENV = VENVS / os.environ.get("KARAK_BENCH_GRANIAN_VENV", "granian311")
GRANIAN_PYTHON = GRANIAN_VENV / "bin" / "python"
GRANIAN_BIN = GRANIAN_VENV / "bin" / "granian"

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"  # single-core rows: the server on CPU 0 ...
CLIENT_CPU = "1"  # ... and wrk on CPU 1


@dataclass
class ServerConfig:
    """How to start one peer in one configuration. Immutable once built."""

    key: str                 # e.g. "karak-w1": stable id used in results and targets
    peer: str                # "karak", "seed", "fastapi", "granian", "nginx"
    label: str               # what the tables show
    python: Path | None      # interpreter whose versions are recorded (None: nginx)
    workers: int | None      # worker count for the scaling chart (None: "default")
    worker_kind: str         # "threads" or "processes"
    endpoints: tuple[str, ...] | None = None  # None: every endpoint
    argv_for_port: object = None   # callable(port, prefix_dir) -> list[str]
    env: dict[str, str] = field(default_factory=dict)
    describe: str = ""       # the exact configuration, in words, for the report

    def serves(self, endpoint_key: str) -> bool:
        return self.endpoints is None or endpoint_key in self.endpoints


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(sid: int) -> list[int]:
    """Every live process whose session id is `sid` (the server's whole tree)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp session ...
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 3 and int(rest[3]) == sid:
            pids.append(int(entry))
    return pids


def machine_busy_seconds() -> float:
    """CPU time spent by processes on the whole machine (all cores) since boot.

    Interrupt and softirq time is left out: loopback networking runs there and belongs
    to the benchmark, not to other users. Steal time (another VM on the host) is in.
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = fields[:8]
    return (user + nice + system + steal) / CLK_TCK


def _status_kb(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/<pid>/status, or 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """One running server. Use as a context manager: the tree is always killed on exit."""

    def __init__(self, config: ServerConfig, pinned: bool, logdir: Path):
        self.config = config
        self.pinned = pinned
        self.port = free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix=f"{config.key}-", dir=logdir))
        self.log_path = self.prefix / "server.log"
        argv = list(config.argv_for_port(self.port, self.prefix))
        if pinned:
            argv = ["taskset", "-c", SERVER_CPU] + argv
        self.argv = argv
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # start-up lines reach the log at once (no per-request output)
        env.update(self.config.env)
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once GET /plaintext (or /cpu) answers 200; raise with the log if not."""
        path = "/plaintext" if self.config.serves("plaintext") else "/cpu"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.config.key} exited early:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    return
                last = f"status {resp.status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise RuntimeError(f"{self.config.key} not ready after {timeout}s ({last}):\n"
                           f"{self.log_tail()}")

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def pids(self) -> list[int]:
        return _session_pids(self.proc.pid) if self.proc else []

    def reset_peak_rss(self) -> bool:
        """Reset VmHWM of every process in the tree (Linux: write 5 to clear_refs)."""
        ok = True
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                ok = False
        return ok

    def peak_rss_kb(self) -> int:
        """Sum of VmHWM (peak resident set) over the server's process tree, in kB."""
        return sum(_status_kb(pid, "VmHWM") for pid in self.pids())

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the live processes of the tree."""
        ticks = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            rest = stat[stat.rfind(b")") + 2:].split()
            ticks += int(rest[11]) + int(rest[12])  # utime, stime
        return ticks / CLK_TCK

    def thread_count(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("Threads:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stop(self) -> None:
        """SIGTERM the whole session, then SIGKILL what is left after 5 s. Idempotent."""
        if self.proc is None:
            return
        sid = self.proc.pid
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            pids = _session_pids(sid)
            if not pids and self.proc.poll() is not None:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                self.proc.poll()
                if not _session_pids(sid):
                    break
                time.sleep(0.05)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


# ---------------------------------------------------------------------------
# The peers
# ---------------------------------------------------------------------------

def _karak(workers: int | None) -> ServerConfig:
    def argv(port, _prefix):
        a = [str(KARAK_PYTHON), "-m", "karak", "bench.apps.karak_app:app",
             "--host", "127.0.0.1", "--port", str(port)]
        return a + (["--workers", str(workers)] if workers else [])
    name = f"w{workers}" if workers else "default"
    return ServerConfig(
        key=f"karak-{name}", peer="karak", python=KARAK_PYTHON,
        label=f"Karak ({workers} worker{'s' if workers != 1 else ''})" if workers
        else "Karak (default workers)",
        workers=workers, worker_kind="threads", argv_for_port=argv,
        describe=f"python -m karak bench.apps.karak_app:app"
                 f"{' --workers ' + str(workers) if workers else ''} (3.13t)")


def _seed(threads: int) -> ServerConfig:
    def argv(port, _prefix):
        return [str(SEED_PYTHON), str(APPS / "seed_app.py"), "--port", str(port),
                "--workers", str(threads)]
    return ServerConfig(
        key=f"seed-{threads}", peer="seed", python=SEED_PYTHON,
        label=f"seed karak 0.1.0 ({threads} threads)", workers=threads,
        worker_kind="threads", argv_for_port=argv,
        describe=f"seed_app.py: karak 0.1.0 app.run(workers={threads}) (3.13t)")


def _fastapi(workers: int) -> ServerConfig:
    def argv(port, _prefix):
        a = [str(FASTAPI_PYTHON), "-m", "uvicorn", "fastapi_app:app",
             "--app-dir", str(APPS), "--host", "127.0.0.1", "--port", str(port),
             "--http", "httptools", "--loop", "uvloop", "--no-access-log",
             "--log-level", "warning"]
        return a + (["--workers", str(workers)] if workers > 1 else [])
    return ServerConfig(
        key=f"fastapi-{workers}", peer="fastapi", python=FASTAPI_PYTHON,
        label=f"FastAPI+uvicorn ({workers} proc)", workers=workers,
        worker_kind="processes", argv_for_port=argv,
        describe=f"uvicorn --http httptools --loop uvloop --no-access-log"
                 f" --workers {workers} (3.11, async def endpoints)")


# Granian's best mode here, chosen by measurement (docs/BENCHMARKS.md): WSGI with a
# single-threaded Rust runtime per worker process.
# KARAK_BENCH_GRANIAN_MODE overrides it, to compare modes again on another machine.
GRANIAN_MODE = os.environ.get(
    "KARAK_BENCH_GRANIAN_MODE", "--interface wsgi --runtime-mode st").split()
GRANIAN_TARGET = ("granian_app:wsgi_app" if "wsgi" in GRANIAN_MODE
                  else "granian_app:rsgi_app")


def _granian(workers: int) -> ServerConfig:
    def argv(port, _prefix):
        return [str(GRANIAN_BIN), *GRANIAN_MODE, "--working-dir", str(APPS),
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--no-ws", "--log-level", "warning", GRANIAN_TARGET]
    return ServerConfig(
        key=f"granian-{workers}", peer="granian", python=GRANIAN_PYTHON,
        label=f"Granian {GRANIAN_TARGET.split(':')[1][:4].upper()} ({workers} proc)",
        workers=workers,
        worker_kind="processes", argv_for_port=argv,
        describe=f"granian {' '.join(GRANIAN_MODE)} --workers {workers}"
                 f" {GRANIAN_TARGET} ({GRANIAN_VENV.name[-4:]}, bare callable)")


def _nginx(workers: int, json_body: str) -> ServerConfig:
    def argv(port, prefix):
        text = (APPS / "nginx.conf.template").read_text()
        for k, v in (("@WORKERS@", str(workers)), ("@PREFIX@", str(prefix)),
                     ("@PORT@", str(port)), ("@JSON@", json_body)):
            text = text.replace(k, v)
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(text)
        return ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(Path(prefix) / "error.log")]
    return ServerConfig(
        key=f"nginx-{workers}", peer="nginx", python=None,
        label=f"nginx ({workers} worker{'s' if workers > 1 else ''})", workers=workers,
        worker_kind="processes", endpoints=("plaintext", "json"), argv_for_port=argv,
        describe=f"nginx worker_processes {workers}, fixed bytes, access_log off")


def all_configs(json_body: str) -> dict[str, ServerConfig]:
    """Every configuration the suite may run, by key."""
    cfgs = [_karak(1), _karak(2), _karak(None), _seed(4), _seed(16),
            _fastapi(1), _fastapi(2), _granian(1), _granian(2),
            _nginx(1, json_body), _nginx(2, json_body)]
    return {c.key: c for c in cfgs}


def available(cfg: ServerConfig) -> str | None:
    """None when the peer can run here, else why not (missing interpreter or module)."""
    if cfg.peer == "nginx":
        return None if _which("nginx") else "nginx not installed"
    py = cfg.python
    if py is None or not Path(py).exists():
        return f"{py} missing (run bench/setup.sh, or `make` for Karak)"
    module = {"karak": "karak._karak", "seed": "karak", "fastapi": "uvicorn",
              "granian": "granian"}[cfg.peer]
    try:
        r = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True,
                           timeout=60, cwd="/")
    except subprocess.TimeoutExpired:
        return f"importing {module} timed out"
    if r.returncode != 0:
        return f"cannot import {module}: {r.stderr.decode(errors='replace').strip()[-200:]}"
    return None


def _which(name: str) -> bool:
    return any(os.access(os.path.join(d, name), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin"])
