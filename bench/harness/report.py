"""Turning rows into judgements and pictures: the targets, the Markdown, the charts.

A row is a dict (see run.py `measure`); rows that are missing or invalid never count
in Karak's favour: a target needs a valid Karak row and a valid peer row.
"""

from __future__ import annotations

from pathlib import Path

from . import wrk
from .endpoints import ENDPOINTS

SINGLE = "single-core"
UNPINNED = "unpinned"


def find(rows: list[dict], section: str, server: str, endpoint: str) -> dict | None:
    for r in rows:
        if r["section"] == section and r["server"] == server and r["endpoint"] == endpoint:
            return r
    return None


# ---------------------------------------------------------------------------
# Targets (issue 4)
# ---------------------------------------------------------------------------

# (id, words, section, karak config, peer config, endpoint, metric, required ratio)
# metric "rps": karak_rps / peer_rps >= ratio; "p99": peer_p99 / karak_p99 >= ratio.
TARGETS = [
    ("plaintext-granian", "GET /plaintext >= Granian", SINGLE, "karak-w1", "granian-1",
     "plaintext", "rps", 1.0),
    ("plaintext-nginx", "GET /plaintext >= 1/2 nginx", SINGLE, "karak-w1", "nginx-1",
     "plaintext", "rps", 0.5),
    ("json-fastapi", "GET /json >= 10x FastAPI", SINGLE, "karak-w1", "fastapi-1",
     "json", "rps", 10.0),
    ("json-granian", "GET /json >= Granian", SINGLE, "karak-w1", "granian-1",
     "json", "rps", 1.0),
    ("items-fastapi", "GET /items/{id} >= 10x FastAPI", SINGLE, "karak-w1", "fastapi-1",
     "items-get", "rps", 10.0),
    ("items-granian", "GET /items/{id} >= Granian", SINGLE, "karak-w1", "granian-1",
     "items-get", "rps", 1.0),
    ("post-fastapi", "POST /items >= 5x FastAPI", SINGLE, "karak-w1", "fastapi-1",
     "items-post", "rps", 5.0),
    ("db-fastapi", "GET /db >= 5x FastAPI", SINGLE, "karak-w1", "fastapi-1",
     "db", "rps", 5.0),
    ("cpu-scaling", "GET /cpu unpinned: 2 workers >= 1.8x 1 worker", UNPINNED, "karak-w2",
     "karak-w1", "cpu", "rps", 1.8),
] + [
    (f"p99-{e.key}", f"{e.label} p99 <= 1/5 FastAPI's", SINGLE, "karak-w1", "fastapi-1",
     e.key, "p99", 5.0)
    for e in ENDPOINTS
]


def ceilings(rows: list[dict], cost: dict | None) -> dict:
    """{endpoint key: (handler µs, http µs, most req/s)} for the endpoints whose own work
    was timed (harness/handler_cost.py, on Karak's interpreter). http µs is nginx's
    server CPU per /json answer on one core in its cheapest round (the cheapest HTTP
    exchange of a small JSON body this machine's kernel allows; 0 when nginx was not
    run). most req/s =
    1e6 / (handler + http): what a server as cheap as nginx would give running this work."""
    nginx = find(rows, SINGLE, "nginx-1", "json")
    http_us = 0.0
    if nginx and nginx.get("valid") and nginx.get("rps") and nginx.get("server_cores"):
        # Its cheapest round: like the handler's time, the fastest the host allowed.
        pairs = list(zip(nginx.get("rounds_server_cores") or [nginx["server_cores"]],
                         nginx.get("rounds_rps") or [nginx["rps"]]))
        http_us = min((c / r * 1e6 for c, r in pairs if c and r),
                      default=nginx["server_cores"] / nginx["rps"] * 1e6)
    out = {}
    for ep, us in (cost or {}).items():
        if isinstance(us, (int, float)) and us > 0:
            out[ep] = (us, http_us, 1e6 / (us + http_us))
    return out


def _floor_words(us: float, http_us: float) -> str:
    return (f"the endpoint's own work takes {us:,.1f} µs" +
            (f" and nginx's cheapest answer {http_us:.1f} µs of server CPU" if http_us else ""))


def ceiling_note(tid: str, ep: str, need: float, peer_rps: float, ceil: dict) -> str:
    """For a throughput target against a peer: why no server could meet it here, when
    even a server as cheap as nginx running the endpoint's work (ceilings()) gives fewer
    req/s than the target asks; else ""."""
    if ep not in ceil or tid == "cpu-scaling":
        return ""
    us, http_us, most = ceil[ep]
    wanted = need * peer_rps
    if most >= wanted:
        return ""
    return (f"out of reach here: {_floor_words(us, http_us)}, so at most {most:,.0f} req/s "
            f"on one core; the target asks for {wanted:,.0f}")


def p99_floor_note(ep: str, need: float, peer_p99: float, ceil: dict,
                   connections: int = 64) -> str:
    """For a p99 target: why no server could meet it on one core, when even at the most
    req/s of ceilings() a closed loop of `connections` has a mean latency (Little's law:
    connections / req/s) above the p99 the target allows. p99 is not below the mean
    when every request costs about the same. Else ""."""
    if ep not in ceil:
        return ""
    us, http_us, most = ceil[ep]
    floor_ms, allowed_ms = connections / most * 1000, peer_p99 / need
    if floor_ms <= allowed_ms:
        return ""
    return (f"out of reach on one core: {_floor_words(us, http_us)}; {connections} "
            f"connections in a closed loop then wait {floor_ms:,.0f} ms on average with any "
            f"server, the target allows a p99 of {allowed_ms:,.0f} ms")


def only_timeouts(row: dict) -> int:
    """How many requests timed out, when timeouts are all that is wrong with the row
    (no other socket error, no status >= 400, the answers checked equal); else 0."""
    errors = row.get("errors") or {}
    others = {k: v for k, v in errors.items() if k != "timeout" and v}
    if others or row.get("check") or not row.get("requests"):
        return 0
    return errors.get("timeout", 0)


def evaluate(rows: list[dict], cost: dict | None = None) -> list[dict]:
    """Each target's verdict. cost: the endpoints' own work on Karak's interpreter
    (µs per call by endpoint key), to say when a missed target was out of reach."""
    ceil = ceilings(rows, cost)
    out = []
    for tid, words, section, kcfg, pcfg, ep, metric, need in TARGETS:
        k, p = find(rows, section, kcfg, ep), find(rows, section, pcfg, ep)
        t = {"id": tid, "target": words, "karak": kcfg, "peer": pcfg, "needed": need,
             "karak_value": None, "peer_value": None, "ratio": None}
        if k is None or k.get("rps") is None:
            t["result"] = "not run" if k is None else "missed"
            t["note"] = "no Karak row" if k is None else f"Karak row failed: {k.get('error')}"
        elif p is None or p.get("rps") is None:
            t["result"] = "n/a"
            t["note"] = "no peer row"
        else:
            kv = k["rps"] if metric == "rps" else k["p99_ms"]
            pv = p["rps"] if metric == "rps" else p["p99_ms"]
            ratio = (kv / pv if metric == "rps" else pv / kv) if (pv and kv) else None
            t.update(karak_value=kv, peer_value=pv, ratio=ratio)
            if not k["valid"]:
                t["result"], t["note"] = "missed", f"Karak row invalid: {k['invalid_reason']}"
            elif not p["valid"]:
                timeouts = only_timeouts(p)
                if metric == "p99" and timeouts and ratio is not None and ratio >= need:
                    t["result"] = "met"
                    t["note"] = (f"the peer's row is invalid only for {timeouts} timed-out "
                                 f"requests; each took over wrk's {wrk.TIMEOUT_S} s and is "
                                 f"not in its p99, which they could only raise: its p99 is "
                                 f"at least {pv:,.0f} ms")
                else:
                    t["result"], t["note"] = "n/a", f"peer row invalid: {p['invalid_reason']}"
            else:
                t["result"] = "met" if ratio is not None and ratio >= need else "missed"
                t["note"] = ""
                if t["result"] == "missed":
                    t["note"] = (ceiling_note(tid, ep, need, pv, ceil) if metric == "rps"
                                 else p99_floor_note(ep, need, pv, ceil))
        out.append(t)
    return out


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

def _num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def _cell(r: dict | None, metric: str) -> str:
    if r is None:
        return ""
    if r.get("rps") is None:
        return "failed"
    v = _num(r["rps"]) if metric == "rps" else _num(r["p99_ms"], 2)
    return v if r["valid"] else v + " (invalid)"


def _broad(rows: list[dict], section: str, servers: list[dict]) -> list[dict]:
    """Servers with rows in `section`; unpinned, only those run on every endpoint (the
    /cpu-only configurations belong to the scaling table and chart)."""
    least = 1 if section == SINGLE else 2
    return [s for s in servers
            if sum(1 for r in rows if r["section"] == section and r["server"] == s["key"]) >= least]


def pivot(rows: list[dict], section: str, metric: str, servers: list[dict]) -> list[list[str]]:
    """Endpoints down, servers across."""
    present = _broad(rows, section, servers)
    table = [["endpoint"] + [s["label"] for s in present]]
    for e in ENDPOINTS:
        cells = [_cell(find(rows, section, s["key"], e.key), metric) for s in present]
        if any(cells):
            table.append([e.label] + cells)
    return table if len(table) > 1 and present else []


def scaling_table(rows: list[dict], servers: list[dict], reported: dict) -> list[list[str]]:
    table = [["server", "workers", "req/s", "p99 ms", "vs the peer's 1 worker"]]
    base = {}
    for s in servers:
        r = find(rows, UNPINNED, s["key"], "cpu")
        if r is None:
            continue
        if s["workers"] == 1 and r.get("rps"):
            base[s["peer"]] = r["rps"]
    for s in servers:
        r = find(rows, UNPINNED, s["key"], "cpu")
        if r is None:
            continue
        b = base.get(s["peer"])
        ratio = f"{r['rps'] / b:.2f}x" if b and r.get("rps") else ""
        n = s["workers"] or (f"default = {reported[s['key']]}" if s["key"] in reported
                             else "default")
        table.append([s["label"], str(n),
                      _cell(r, "rps"), _num(r.get("p99_ms"), 2), ratio])
    return table if len(table) > 1 else []


def detail_table(rows: list[dict]) -> list[list[str]]:
    table = [["section", "server", "endpoint", "req/s", "req/s per server core",
              "p50 ms", "p99 ms", "errors",
              "peak RSS MiB", "threads", "server cores", "other cores", "CPU probe MB/s",
              "valid", "every round's req/s"]]
    for r in rows:
        errs = r.get("error_total")
        table.append([
            r["section"], r["label"], r["endpoint_label"], _num(r.get("rps")),
            _num(r.get("rps_per_server_core")),
            _num(r.get("p50_ms"), 2), _num(r.get("p99_ms"), 2),
            "-" if errs is None else str(errs), _num(r.get("peak_rss_mib"), 1),
            str(r.get("threads", "")), _num(r.get("server_cores"), 2),
            _num(r.get("other_cores"), 2),
            _num(min(r["cpu_probe_mbs"])) if r.get("cpu_probe_mbs") else "-",
            "yes" if r["valid"] else "no",
            " / ".join(_num(x) for x in r["rounds_rps"]) if r.get("rounds_rps") else ""])
    return table


def targets_table(targets: list[dict]) -> list[list[str]]:
    table = [["target", "Karak", "peer", "ratio", "needed", "result"]]
    for t in targets:
        p99 = t["id"].startswith("p99")
        fmt = (lambda v: _num(v, 2) + " ms") if p99 else (lambda v: _num(v))
        table.append([
            t["target"], fmt(t["karak_value"]) if t["karak_value"] is not None else "-",
            (fmt(t["peer_value"]) + f" ({t['peer']})") if t["peer_value"] is not None else "-",
            f"{t['ratio']:.2f}x" if t["ratio"] is not None else "-",
            f"{t['needed']:g}x",
            t["result"] + (f" ({t['note']})" if t["note"] else "")])
    return table


def handler_cost_table(result: dict) -> list[list[str]]:
    """Per endpoint: µs per call on each measured interpreter, nginx's server CPU per
    answer, the most req/s a server as cheap as nginx could give on Karak's interpreter
    (ceilings()), and Karak's single-core req/s as a share of it."""
    from .handler_cost import WORK
    cost = result.get("handler_cost", {})
    peers = [p for p in ("karak", "fastapi") if p in cost]
    if not peers:
        return []
    ceil = ceilings(result["rows"], cost.get("karak"))
    py = {p: result["versions"].get(p, {}).get("python", "?") for p in peers}
    table = [["endpoint"] + [f"own work µs, {p}'s Python {py[p]}" for p in peers]
             + ["nginx µs per answer", "most req/s (work + nginx)", "Karak (1 worker) req/s",
                "Karak's share of that"]]
    labels = {e.key: e.label for e in ENDPOINTS}
    for ep in WORK:
        cells = []
        for p in peers:
            v = cost[p].get(ep)
            cells.append(_num(v, 1) if isinstance(v, (int, float)) else cost[p].get("error", "-"))
        _us, http_us, most = ceil.get(ep, (None, None, None))
        k = find(result["rows"], SINGLE, "karak-w1", ep)
        krps = k.get("rps") if k and k.get("valid") else None
        share = f"{krps / most:.0%}" if krps and most else "-"
        table.append([labels.get(ep, ep)] + cells +
                     [_num(http_us, 1) if http_us else "-", _num(most), _num(krps), share])
    return table


def markdown_table(table: list[list[str]]) -> str:
    if not table:
        return "_(no rows)_\n"
    head, *body = table
    right = [i > 0 for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |",
             "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def text_table(table: list[list[str]]) -> str:
    if not table:
        return "(no rows)\n"
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    out = []
    for n, row in enumerate(table):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------

def charts(result: dict, outdir: Path) -> list[str]:
    """Write rps.png and scaling.png; returns the file names (none without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    rows, servers = result["rows"], result["servers"]
    written = []

    fig, axes = plt.subplots(2, 1, figsize=(13, 10))
    for ax, section, title in ((axes[0], SINGLE, "single core (server on CPU 0, wrk on CPU 1)"),
                               (axes[1], UNPINNED, "unpinned (server and wrk share 2 cores)")):
        present = _broad(rows, section, servers)
        width = 0.8 / max(1, len(present))
        for i, s in enumerate(present):
            xs, ys, hatches = [], [], []
            for j, e in enumerate(ENDPOINTS):
                r = find(rows, section, s["key"], e.key)
                if r is None or not r.get("rps"):
                    continue
                xs.append(j + i * width - 0.4 + width / 2)
                ys.append(r["rps"])
                hatches.append("" if r["valid"] else "//")
            bars = ax.bar(xs, ys, width, label=s["label"])
            for bar, h in zip(bars, hatches):
                bar.set_hatch(h)
        ax.set_yscale("log")
        top = max((r["rps"] for r in rows if r["section"] == section and r.get("rps")),
                  default=10)
        ax.set_ylim(top=top * 6)  # room for the legend above the tallest bar
        ax.set_xticks(range(len(ENDPOINTS)), [e.label for e in ENDPOINTS])
        ax.set_ylabel("requests/s (log scale)")
        ax.set_title(f"req/s per endpoint, {title}; hatched = invalid row")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=4)
    fig.suptitle(f"Karak benchmark ({result['mode']}) {result['date_utc']} - "
                 f"{result['machine']['cpu_model']}, {result['machine']['cores']} cores")
    fig.tight_layout()
    fig.savefig(outdir / "rps.png", dpi=110)
    plt.close(fig)
    written.append("rps.png")

    fig, ax = plt.subplots(figsize=(8, 5))
    for peer in ("karak", "seed", "fastapi", "granian"):
        pts = []
        for s in servers:
            if s["peer"] != peer:
                continue
            r = find(rows, UNPINNED, s["key"], "cpu")
            if r is None or not r.get("rps"):
                continue
            n = s["workers"] or result["workers_reported"].get(s["key"])
            if not n:
                continue
            if s["workers"] is None and any(x["peer"] == peer and x["workers"] == n
                                            for x in servers):
                continue  # "default" equals an explicit count already plotted
            pts.append((n, r["rps"]))
        if pts:
            pts.sort()
            kind = "threads" if peer in ("karak", "seed") else "processes"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                    label=f"{peer} ({kind})")
    ticks = sorted({x for line in ax.get_lines() for x in line.get_xdata()})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(int(t)) for t in ticks])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel("workers (threads for Karak and the seed, processes for the others)")
    ax.set_ylabel("GET /cpu requests/s")
    ax.set_title("Thread scaling, GET /cpu, unpinned, 2 cores")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(outdir / "scaling.png", dpi=110)
    plt.close(fig)
    written.append("scaling.png")
    return written
