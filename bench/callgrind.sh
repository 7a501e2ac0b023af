#!/bin/bash
# Instructions per request inside the Karak server, counted by callgrind: the same
# count on a busy or a quiet host, so a change to the request path can be judged
# without wrk's noise (docs/BENCHMARKS.md, "Counting instructions").
#
#   bench/callgrind.sh ENDPOINT [FUNCTION]
#
# ENDPOINT is a GET path of bench/apps/karak_app.py without its slash (json, db,
# plaintext, items/1?q=a&limit=2), or "POST items" for POST /items with the body
# of bench/post_items.lua. The server (1 worker, under valgrind) answers
# 1,000 requests and, in a second run, 3,000; the difference over 2,000 is the cost
# of one request, start-up and shut-down cancelled out. With FUNCTION (a C function
# such as kk_json_encode_shaped), only the instructions inside it are counted (one
# run of 1,000 requests). Run from the repository root after `make build`.
set -euo pipefail
endpoint=${1:?usage: bench/callgrind.sh ENDPOINT [FUNCTION]}
method=GET
case "$endpoint" in "POST "*) method=POST; endpoint=${endpoint#POST };; esac
func=${2:-}
py=${PYTHON:-.venv/bin/python}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

one_run() {  # n port -> prints the "Collected" total
    local n=$1 port=$2 toggle=()
    [ -n "$func" ] && toggle=(--toggle-collect="$func")
    valgrind --tool=callgrind "${toggle[@]}" --callgrind-out-file="$out/cg.$n" \
        "$py" -m karak bench.apps.karak_app:app --host 127.0.0.1 --port "$port" \
        --workers 1 >"$out/log.$n" 2>&1 &
    local vg=$!
    "$py" - "$port" "/$endpoint" "$n" "$method" <<'EOF'
import http.client, sys, time
port, path, n, method = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
body = b'{"name":"Widget","price":9.99,"tags":["a","b"]}' if method == "POST" else None
headers = {"Content-Type": "application/json"} if body else {}
for _ in range(600):  # valgrind takes a while to start the interpreter
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.connect()
        break
    except OSError:
        time.sleep(0.5)
for _ in range(n):
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
EOF
    kill -INT "$vg"
    wait "$vg" || true
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log.$n"
}

port=$((20000 + RANDOM % 20000))
if [ -n "$func" ]; then
    total=$(one_run 1000 "$port")
    echo "$method $endpoint: $((total / 1000)) instructions per request inside $func"
    callgrind_annotate "$out/cg.1000" | sed -n '/file:function/,$p' | head -15
else
    a=$(one_run 1000 "$port")
    b=$(one_run 3000 "$((port + 1))")
    echo "$method $endpoint: $(((b - a) / 2000)) instructions per request (user space, whole server)"
fi
