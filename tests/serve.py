"""Launcher the integration tests use to serve an app: `python tests/serve.py module:attr PORT WORKERS`.

Imports `attr` (default "app") from `module` and calls
app.run(host="127.0.0.1", port=PORT, workers=WORKERS), which blocks until SIGINT/SIGTERM.
The module is found through PYTHONPATH (the harness puts tests/apps on it).
"""
import importlib
import sys


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit("usage: serve.py module:attr PORT WORKERS")
    target, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    module_name, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    app.run(host="127.0.0.1", port=port, workers=workers)


if __name__ == "__main__":
    main()
