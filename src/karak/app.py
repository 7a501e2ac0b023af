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

#: Defaults of the limits and timeouts ``run()`` accepts (seconds, bytes).
DEFAULT_LIMITS = {
    "max_request_line": 8192,
    "max_header_bytes": 65536,
    "max_headers": 100,
    "max_body": 1024 * 1024,
    "header_timeout": 30.0,
    "body_timeout": 60.0,
    "keepalive_timeout": 75.0,
    "graceful_timeout": 30.0,
    "max_connections": 0,
    "max_requests_per_connection": 0,
}


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
        unknown = set(limits) - set(DEFAULT_LIMITS) - {"backlog", "workers"}
        if unknown:
            raise TypeError(f"unknown server options: {', '.join(sorted(unknown))}")
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
        serve requests in parallel. ``limits`` are the keys of
        ``DEFAULT_LIMITS``. Port 0 picks a free port (printed on start).
        """
        workers = workers or usable_cpus()
        if workers < 1:
            raise ValueError("workers must be at least 1")
        _raise_fd_limit()
        server = self.build_server(host, port, workers=workers, **limits)
        self._server = server
        for fn in self._startup:
            fn()
        threads = [
            threading.Thread(target=server.serve, name=f"karak-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        restore = self._install_signals(server)
        for t in threads:
            t.start()
        shown = f"[{host}]" if ":" in host else host
        print(f"Karak serving on http://{shown}:{server.port} with {workers} worker"
              f"{'s' if workers != 1 else ''} (Ctrl+C to stop)", file=sys.stderr, flush=True)
        grace = float(limits.get("graceful_timeout") or DEFAULT_LIMITS["graceful_timeout"])
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.25)
                if server.stopping and not hasattr(self, "_stop_at"):
                    self._stop_at = time.monotonic()
                if server.stopping and time.monotonic() - self._stop_at > grace + 2:
                    logger.warning("workers still busy after the grace period; exiting")
                    break
        finally:
            server.stop()
            for t in threads:
                t.join(0.5)
            if not any(t.is_alive() for t in threads):
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
