"""Command line: ``python -m karak module:app [--host H] [--port P] [--workers N]``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from .app import DEFAULT_LIMITS, LIMIT_TYPES, Karak, check_options


def load_app(spec: str) -> Karak:
    """Imports ``module:attr`` (attr defaults to ``app``) with the cwd on sys.path."""
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise SystemExit(f"karak: expected module:app, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    try:
        app = getattr(module, attr or "app")
    except AttributeError:
        raise SystemExit(f"karak: module {module_name!r} has no attribute {attr or 'app'!r}")
    if not isinstance(app, Karak):
        raise SystemExit(f"karak: {spec} is a {type(app).__name__}, not a Karak application")
    return app


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m karak", description="Serve a Karak application.")
    p.add_argument("app", help="the application, as module:attribute (e.g. main:app)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    p.add_argument("--workers", type=int, default=None,
                   help="worker threads (default: the CPUs this process may use)")
    derived = {"max_connections": "from the open-files limit",
               "max_workers": "workers + spares, 128 in all"}
    for key, value in DEFAULT_LIMITS.items():
        shown = derived[key] if value is None else value
        p.add_argument("--" + key.replace("_", "-"), type=LIMIT_TYPES[key], default=None,
                       help=f"default {shown}")
    args = p.parse_args(argv)
    limits = {k: getattr(args, k) for k in DEFAULT_LIMITS if getattr(args, k) is not None}
    try:
        check_options({"workers": args.workers, **limits})
    except (TypeError, ValueError) as e:
        p.error(str(e))
    app = load_app(args.app)
    app.run(host=args.host, port=args.port, workers=args.workers, **limits)


if __name__ == "__main__":
    main()
