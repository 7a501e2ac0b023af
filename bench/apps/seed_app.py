"""The benchmark endpoints on the seed's pure-Python karak 0.1.0 (its API, its server).

The endpoints are karak_app.py's, imported here under the seed's package: the
two frameworks share that API, so one definition serves both.

Run: <seed313t venv>/bin/python bench/apps/seed_app.py --port 8001 --workers 4
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from karak_app import app  # noqa: E402  (karak here is the seed, from PyPI)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    app.run(host=args.host, port=args.port, workers=args.workers)
