"""The application object: routes, hooks, and running the server."""
from __future__ import annotations

import inspect
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable, Optional

from . import _glue  # noqa: F401  (wires the engine before any Server exists)
from . import _karak
from .params import PlanBuilder, path_param_names

logger = logging.getLogger("karak")

_EMPTY = inspect.Parameter.empty
Handler = Callable[..., Any]

#: Defaults of the limits and timeouts ``run()`` accepts (seconds, bytes,
#: bytes per second). ``max_connections`` None: derived from the open-files
#: limit (RLIMIT_NOFILE) when the server is built, so that client connections
#: alone cannot exhaust the process's descriptors (docs/OPERATIONS.md); 0: no limit.
DEFAULT_LIMITS = {
    "max_request_line": 8192,
    "max_header_bytes": 65536,
    "max_headers": 100,
    "max_body": 1024 * 1024,
    "header_timeout": 30.0,
    "body_timeout": 60.0,
    "keepalive_timeout": 75.0,
    "graceful_timeout": 30.0,
    "max_connections": None,
    "max_requests_per_connection": 0,
    "min_body_rate": 500,
    "body_rate_grace": 5.0,
    "max_workers": None,
    "worker_idle_timeout": 10.0,
}

#: run()'s default bound on serving threads (max_workers), when it is not given:
#: the event-loop workers plus spares for handlers that block (docs/ARCHITECTURE.md,
#: "Threads"), at least this many in all. AnyIO, under FastAPI's ``def`` handlers,
#: allows 40; 128 lets 64 connections that each wait on a 10 ms call keep 6,400
#: requests a second going, and 100 requests wait on a 100-party barrier at once.
DEFAULT_MAX_WORKERS = 128

#: The type of each option (for the command line and for check_options).
LIMIT_TYPES = {k: (int if v is None else type(v)) for k, v in DEFAULT_LIMITS.items()}

#: The longest timeout accepted, in seconds (about 115 days); the engine's own bound.
MAX_SECONDS = 10_000_000
_AT_LEAST_ONE = {"max_request_line", "max_header_bytes", "max_headers", "max_workers"}
_ZERO_OK_SECONDS = {"graceful_timeout", "body_rate_grace", "worker_idle_timeout"}


def check_options(limits: dict) -> None:
    """Raises ValueError (naming the option) for a limit or timeout out of range:
    a negative or zero size, a timeout that is not a finite number of seconds
    between 0 and MAX_SECONDS (inf, nan, 1e300), an unknown option (TypeError).
    ``run()`` and the command line check their options here before serving."""
    import math

    unknown = set(limits) - set(LIMIT_TYPES) - {"backlog", "workers"}
    if unknown:
        raise TypeError(f"unknown server options: {', '.join(sorted(unknown))}")
    for key, value in limits.items():
        if value is None:
            continue
        kind = int if key in ("backlog", "workers") else LIMIT_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                kind is int and not isinstance(value, int)):
            raise TypeError(f"{key} must be {'an int' if kind is int else 'a number'}, "
                            f"not {type(value).__name__}")
        if kind is float:
            low = "0 or more" if key in _ZERO_OK_SECONDS else "more than 0"
            if not math.isfinite(value) or value < 0 or value > MAX_SECONDS or (
                    value == 0 and key not in _ZERO_OK_SECONDS):
                raise ValueError(f"{key} must be a finite number of seconds, {low} and at most "
                                 f"{MAX_SECONDS}, not {value!r}")
        elif key in _AT_LEAST_ONE or key in ("workers",):
            if value < 1:
                raise ValueError(f"{key} must be at least 1, not {value!r}")
        elif value < 0:
            raise ValueError(f"{key} must be 0 or more, not {value!r}")


def _raise_fd_limit() -> None:
    """Lifts the soft open-files limit to the hard one: every connection is a
    descriptor, and 1024 (a common soft default) is far below what the engine
    can hold idle."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


class _Route:
    __slots__ = ("path", "methods", "fn", "plan")

    def __init__(self, path: str, methods: tuple[str, ...], fn: Handler, plan: Any) -> None:
        self.path, self.methods, self.fn, self.plan = path, methods, fn, plan


class _Spec:
    """A route as declared on an ``APIRouter``: compiled when it is included."""

    __slots__ = ("path", "methods", "fn", "status_code", "response_model")

    def __init__(self, path: str, methods: tuple[str, ...], fn: Handler,
                 status_code: Optional[int], response_model: Any) -> None:
        self.path, self.methods, self.fn = path, methods, fn
        self.status_code, self.response_model = status_code, response_model


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or (prefix and (not prefix.startswith("/")
                                                   or prefix.endswith("/"))):
        raise ValueError(f"a prefix must be '' or start with '/' and not end with '/', "
                         f"not {prefix!r}")
    return prefix


def _compile(path: str, methods: tuple[str, ...], fn: Handler, status_code: Optional[int],
             response_model: Any) -> _Route:
    """Reads fn's signature once and builds its C plan for this full path."""
    if not path.startswith("/"):
        raise ValueError(f"route path must start with '/', not {path!r}")
    plan = PlanBuilder(path_param_names(path)).root(
        fn, 200 if status_code is None else status_code, response_model)
    return _Route(path, methods, fn, plan)


class _Decorators:
    """``route`` and the per-method decorators, shared by ``Karak`` and ``APIRouter``."""

    _relative_paths = False  # may a route path be "" (an APIRouter with a prefix)?

    def _add(self, path: str, methods: tuple[str, ...], fn: Handler,
             status_code: Optional[int], response_model: Any) -> None:
        raise NotImplementedError

    def route(
        self,
        path: str,
        methods: Optional[Iterable[str]] = None,
        *,
        status_code: Optional[int] = None,
        response_model: Any = _EMPTY,
    ) -> Callable[[Handler], Handler]:
        """Registers the decorated function for ``path`` and ``methods`` (default GET)."""
        if not isinstance(path, str) or not (path.startswith("/")
                                             or (path == "" and self._relative_paths)):
            raise ValueError(f"route path must be a str starting with '/', not {path!r}")
        ms = tuple(m.upper() for m in (methods or ("GET",)))
        if not ms:
            raise ValueError("methods must not be empty")

        def decorator(fn: Handler) -> Handler:
            self._add(path, ms, fn, status_code, response_model)
            return fn

        return decorator

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["GET"], **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["POST"], **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PUT"], **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PATCH"], **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["DELETE"], **kw)

    def head(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["HEAD"], **kw)

    def options(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["OPTIONS"], **kw)

    def include_router(self, router: "APIRouter", prefix: str = "") -> None:
        """Adds every route ``router`` has now, under ``prefix`` + ``router.prefix``.
        Routes added to ``router`` later are not included (as in FastAPI)."""
        if not isinstance(router, APIRouter):
            raise TypeError(f"include_router() takes an APIRouter, not {type(router).__name__}")
        full = _check_prefix(prefix) + router.prefix
        for r in list(router._specs):
            self._add(full + r.path, r.methods, r.fn, r.status_code, r.response_model)


class APIRouter(_Decorators):
    """A group of routes under a common path prefix, declared apart from the app
    (one module per resource) and added with ``app.include_router(router)``.

    Each route's signature is checked when it is declared, with the router's own
    prefix, and compiled again with its full path when it is included."""

    _relative_paths = True

    def __init__(self, prefix: str = "") -> None:
        self.prefix = _check_prefix(prefix)
        self._specs: list[_Spec] = []

    def _add(self, path: str, methods: tuple[str, ...], fn: Handler,
             status_code: Optional[int], response_model: Any) -> None:
        if not (self.prefix + path):
            raise ValueError("a route path may be '' only on an APIRouter with a prefix")
        _compile(self.prefix + path, methods, fn, status_code, response_model)  # errors now
        self._specs.append(_Spec(path, methods, fn, status_code, response_model))


def usable_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask), as Python 3.13's
    os.process_cpu_count() says; on older Pythons from os.sched_getaffinity, else
    os.cpu_count()."""
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        return count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


class Karak(_Decorators):
    """A Karak application.

    Register handlers with the decorators (``get``, ``post``, ... or ``route``),
    or group them on an ``APIRouter`` and ``include_router`` it, then call ``run()``. Routes are compiled when registered and frozen when the
    server starts: registering while serving is not supported.
    """

    def __init__(self, *, redirect_slashes: bool = True) -> None:
        #: As in FastAPI: a path that matches no route but would with its trailing
        #: "/" added or removed gets a 307 to that path.
        self.redirect_slashes = bool(redirect_slashes)
        self._routes: list[_Route] = []
        self._startup: list[Callable[[], Any]] = []
        self._shutdown: list[Callable[[], Any]] = []
        self._server: Optional[Any] = None

    # ---- registration -----------------------------------------------------

    def _add(self, path: str, methods: tuple[str, ...], fn: Handler,
             status_code: Optional[int], response_model: Any) -> None:
        self._routes.append(_compile(path, methods, fn, status_code, response_model))

    def on_startup(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Runs ``fn()`` before the server accepts its first connection."""
        self._startup.append(fn)
        return fn

    def on_shutdown(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Runs ``fn()`` after the last in-flight request finished, on shutdown."""
        self._shutdown.append(fn)
        return fn

    # ---- serving ----------------------------------------------------------

    def build_server(self, host: str = "127.0.0.1", port: int = 8000, **limits: Any) -> Any:
        """Freezes the routes into a C server bound to host:port (not yet serving).

        Each serving thread calls ``server.serve()``. ``workers=N`` says how many
        will: with more than one, no worker takes a batch of connections for
        itself, even before the others have started."""
        check_options(limits)
        table = [(m, r.path, r.plan) for r in self._routes for m in r.methods]
        opts = {k: v for k, v in limits.items() if v is not None}
        return _karak.Server(table, host, port, redirect_slashes=self.redirect_slashes, **opts)

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        workers: Optional[int] = None,
        **limits: Any,
    ) -> None:
        """Serves until SIGINT or SIGTERM, then shuts down gracefully.

        ``workers`` threads (default: the number of CPUs this process may run
        on, ``os.process_cpu_count()``: a ``taskset`` or cpuset limit counts)
        run the event loop and serve requests in parallel; while handlers block
        (sleep, a database, another service), spare threads take their place in
        the loop, up to ``max_workers`` threads in all (default
        ``max(DEFAULT_MAX_WORKERS, workers)``; ``max_workers=workers`` turns the
        spares off). ``limits`` are the keys of ``DEFAULT_LIMITS``. Port 0 picks
        a free port (printed on start).
        """
        workers = workers or usable_cpus()
        if workers < 1:
            raise ValueError("workers must be at least 1")
        check_options(limits)
        limits = dict(limits)
        max_workers = limits.pop("max_workers", None) or max(DEFAULT_MAX_WORKERS, workers)
        if max_workers < workers:
            raise ValueError(f"max_workers ({max_workers}) must be at least workers ({workers})")
        _raise_fd_limit()
        server = self.build_server(host, port, workers=workers, max_workers=max_workers, **limits)
        self._server = server
        for fn in self._startup:
            fn()
        threads = [
            threading.Thread(target=server.serve, name=f"karak-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        monitor = None
        if max_workers > workers:
            monitor = threading.Thread(target=server.monitor, name="karak-monitor", daemon=True)
        restore = self._install_signals(server)
        for t in threads:
            t.start()
        if monitor:
            monitor.start()
        shown = f"[{host}]" if ":" in host else host
        limit = f"at most {server.max_connections} connections" if server.max_connections \
            else "no connection limit"
        print(f"Karak serving on http://{shown}:{server.port} with {workers} worker"
              f"{'s' if workers != 1 else ''} ({limit}; Ctrl+C to stop)", file=sys.stderr,
              flush=True)
        grace = float(limits.get("graceful_timeout") or DEFAULT_LIMITS["graceful_timeout"])
        try:
            # Until every serving thread has left: the workers, and the spares
            # the pool started (server.join).
            while any(t.is_alive() for t in threads) or not server.join(0):
                for t in threads:
                    t.join(0.25)
                if not any(t.is_alive() for t in threads):
                    server.join(0.25)
                if server.stopping and not hasattr(self, "_stop_at"):
                    self._stop_at = time.monotonic()
                if server.stopping and time.monotonic() - self._stop_at > grace + 2:
                    logger.warning("workers still busy after the grace period; exiting")
                    break
        finally:
            server.stop()
            for t in threads:
                t.join(0.5)
            if monitor:
                monitor.join(1.0)
            if server.join(0.5) and not any(t.is_alive() for t in threads):
                server.close()
            restore()
            self.__dict__.pop("_stop_at", None)
            self._server = None
            for fn in self._shutdown:
                fn()

    def stop(self) -> None:
        """Asks a running server to shut down gracefully (from any thread)."""
        if self._server is not None:
            self._server.stop()

    @staticmethod
    def _install_signals(server: Any) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {}

        def on_signal(signum: int, frame: Any) -> None:
            server.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in old.items():
                signal.signal(sig, handler)

        return restore
