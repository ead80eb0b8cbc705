#!/usr/bin/env python3
"""Parses wrk output, aggregates the rounds (median per target) and prints the benchmark report.

  report.py wrk FILE [LABEL]   one line: req/s, p50, p99 of one wrk run (progress output of run.sh)
  report.py report OUTDIR      the report; writes OUTDIR/results.json, results.csv and runs.csv.
                               Exit status 3 when a target check FAILs, 0 otherwise.

OUTDIR holds what run.sh recorded: meta.json, runs.jsonl (one line per measured wrk run), raw/*.txt (wrk
output), coalesce-1.json, coalesce-2.json, rss.jsonl.
"""
import csv
import json
import re
import statistics
import sys
from pathlib import Path

BASELINE = "nginx"
TARGETS = {
    "upstream": "upstream direct (nginx return 200)",
    "nginx": "baseline: nginx keep-alive reverse proxy, no auth",
    "nginx-njs": "nginx + njs phantom token (auth_request + proxy_cache)",
    "shroud-none": "Shroud, credentials = none",
    "shroud-phantom": "Shroud phantom token, memory-tier hit",
    "shroud-redis": "Shroud phantom token, Redis tier only",
    "shroud-cookie": "Shroud token handler cookie, cache hit",
    "shroud-miss": "Shroud cache miss (every token new)",
    "cmp-none": "BENCH_COMPARE build, credentials = none",
    "cmp-phantom": "BENCH_COMPARE build, phantom memory-tier hit",
    "cmp-cookie": "BENCH_COMPARE build, cookie cache hit",
}
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def duration_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unknown wrk duration {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(text):
    """Requests/sec, latency percentiles (ms), request count and errors of one wrk --latency run."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    total = re.search(r"^\s+(\d+) requests in", text, re.M)
    if not (rps and p50 and p99 and total):
        raise ValueError("not a complete wrk --latency output:\n" + text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": duration_ms(p50.group(1)),
        "p99_ms": duration_ms(p99.group(1)),
        "requests": int(total.group(1)),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, sockets.groups())) if sockets else 0,
    }


def one_line(path, label):
    run = parse_wrk(Path(path).read_text())
    errors = run["non_2xx"] + run["socket_errors"]
    return (f"{label}: {run['rps']:.0f} req/s, p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms"
            + (f", {errors} ERRORS" if errors else ""))


def median(values):
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def aggregate(out):
    runs = []
    for line in (out / "runs.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.update(parse_wrk((out / record["raw"]).read_text()))
        runs.append(record)
    summary = {}
    for target in TARGETS:
        mine = [r for r in runs if r["target"] == target]
        if not mine:
            continue
        summary[target] = {
            "description": TARGETS[target],
            "rounds": len(mine),
            "rps": median([r["rps"] for r in mine]),
            "p50_ms": median([r["p50_ms"] for r in mine]),
            "p99_ms": median([r["p99_ms"] for r in mine]),
            "errors": sum(r["non_2xx"] + r["socket_errors"] for r in mine),
            "as_calls_per_s": median([r["as_calls"] / r["duration"] for r in mine]),
            "other_cpu": median([r.get("other_cpu", 0.0) for r in mine]),
            "cpu_us_per_request": median([r["server_cpu_s"] * 1e6 / r["requests"]
                                          for r in mine if "server_cpu_s" in r and r["requests"]]),
            "rps_all_rounds": [r["rps"] for r in mine],
        }
    base = summary.get(BASELINE, {})
    for s in summary.values():
        s["rps_vs_nginx"] = ratio(s["rps"], base.get("rps"))
        s["p99_vs_nginx"] = ratio(s["p99_ms"], base.get("p99_ms"))
        s["cpu_efficiency_vs_nginx"] = ratio(base.get("cpu_us_per_request"), s["cpu_us_per_request"])
    return runs, summary


def load_rss(out):
    steps = []
    path = out / "rss.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        step = json.loads(line)
        if "raw" in step:
            step.update(parse_wrk((out / step["raw"]).read_text()))
        steps.append(step)
    return steps


def load_json(path):
    return json.loads(path.read_text()) if path.exists() else None


class Broken(Exception):
    """A check's input was measured but is not usable (errors in the runs)."""


def checks(summary, coalesce, rss):
    """The issue's targets. A check whose input was not measured is "n/a"; one whose runs had errors FAILs."""
    def metric(target, key):
        s = summary.get(target)
        if s is None:
            return None
        if s["errors"]:
            raise Broken(f"{target} had {s['errors']} errors")
        return s[key]

    def coalesced(n):
        c = coalesce.get(n)
        if c is None:
            return None
        if c["statuses"] != {"200": c["requests"]}:
            raise Broken(f"statuses {c['statuses']}")
        return c["introspections"]

    def rss_mb(tokens):
        return next((s["rss_kb"] * 1024 / 1e6 for s in rss if s.get("tokens") == tokens and "rss_kb" in s), None)

    n = coalesce.get(1, coalesce.get(2, {})).get("requests", "N")
    rows = [
        ("phantom cache-hit ÷ plain nginx (req/s)",
         lambda: ratio(metric("shroud-phantom", "rps"), metric("nginx", "rps")), ">=", 1.0),
        ("cookie path ÷ plain nginx (req/s)",
         lambda: ratio(metric("shroud-cookie", "rps"), metric("nginx", "rps")), ">=", 0.9),
        ("phantom cache-hit ÷ nginx+njs (req/s)",
         lambda: ratio(metric("shroud-phantom", "rps"), metric("nginx-njs", "rps")), ">=", 3.0),
        ("p99 phantom cache-hit ÷ p99 plain nginx",
         lambda: ratio(metric("shroud-phantom", "p99_ms"), metric("nginx", "p99_ms")), "<=", 1.2),
        (f"introspections, {n} concurrent first uses, 1 instance", lambda: coalesced(1), "==", 1),
        (f"introspections, {n} concurrent first uses, 2 instances + Redis", lambda: coalesced(2), "==", 1),
        ("RSS with 100k cached tokens (MB)", lambda: rss_mb(100000), "<=", 150),
    ]
    result = []
    for name, compute, op, limit in rows:
        note = None
        try:
            value = compute()
        except Broken as e:
            value, note = None, str(e)
        if note:
            verdict = "FAIL"
        elif value is None:
            verdict = "n/a"  # not measured in this run
        elif op == ">=":
            verdict = "PASS" if value >= limit else "FAIL"
        elif op == "<=":
            verdict = "PASS" if value <= limit else "FAIL"
        else:
            verdict = "PASS" if value == limit else "FAIL"
        result.append({"check": name, "value": value, "op": op, "limit": limit, "verdict": verdict, "note": note})
    return result


def print_report(meta, summary, coalesce, rss, verdicts):
    p = print
    p()
    p("=" * 100)
    p(f"Shroud benchmark  {meta.get('stamp', '')}   commit {meta.get('shroud_commit', '?')}")
    p(f"load: {meta.get('wrk')} ({meta.get('rounds')} round(s), round-robin, median shown), "
      f"{meta.get('tokens')} distinct tokens per cache-hit target")
    p(f"CPU: {meta.get('cpus')} cores, {meta.get('pinning')}")
    p(f"authorization server: {meta.get('authorization_server')}")
    p(f"nginx {meta.get('nginx')} (njs {meta.get('njs')}), 2 workers; Shroud workers = 2; redis {meta.get('redis')}")
    p(f"logging: {meta.get('logging')}")
    p("=" * 100)
    header = (f"{'target':<15} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'÷nginx':>7} {'p99÷ng':>7} {'µs/req':>7} "
              f"{'cpu÷ng':>7} {'AS/s':>8} {'other':>5}  what")
    p(header)
    p("-" * len(header))
    for target, s in summary.items():
        note = s["description"] + (f"  [{s['errors']} ERRORS]" if s["errors"] else "")
        p(f"{target:<15} {s['rps']:>9.0f} {s['p50_ms']:>7.2f} {s['p99_ms']:>7.2f} "
          f"{fmt(s['rps_vs_nginx'], '.2f'):>7} {fmt(s['p99_vs_nginx'], '.2f'):>7} "
          f"{fmt(s['cpu_us_per_request'], '.1f'):>7} {fmt(s['cpu_efficiency_vs_nginx'], '.2f'):>7} "
          f"{s['as_calls_per_s']:>8.0f} "
          f"{s['other_cpu']:>5.2f}  {note}")
    p("÷nginx, p99÷ng = ratio to the baseline's req/s and p99; AS/s = introspections per second at the")
    p("authorization server during the run (0 for cache hits); other = cores' worth of CPU used by processes")
    p("not in this benchmark during the run (median); µs/req = CPU (user + system) the target's own servers")
    p("spent per request (the upstream's excluded; shroud-redis includes its redis-server); cpu÷ng = nginx's")
    p("µs/req ÷ the target's (1.00 = as cheap per request as the baseline). µs/req depends far less on what")
    p("else the machine is doing than req/s does.")
    busy = [t for t, s in summary.items() if s["other_cpu"] > 0.2]
    if busy:
        p(f"WARNING: other processes used > 0.2 cores during {', '.join(busy)}: those numbers are disturbed.")
    miss = summary.get("shroud-miss")
    if miss:
        p(f"cache-miss path: {miss['as_calls_per_s']:.0f} introspections/s "
          f"({miss['rps']:.0f} req/s, p99 {miss['p99_ms']:.2f} ms)")
    p()
    for n in (1, 2):
        c = coalesce.get(n)
        if c:
            p(f"coalescing, {n} instance(s): {c['requests']} concurrent first uses → {c['introspections']} "
              f"introspection(s); statuses {c['statuses']}; {c['memory_misses']} requests missed the memory "
              f"tier together (sent in {c['send_ms']} ms, all answered in {c['elapsed_ms']} ms)")
    if rss:
        p()
        p(f"{'cached tokens':>13} {'loaded':>9} {'load s':>7} {'tokens/s':>9} {'RSS MB':>8} {'req/s':>9} "
          f"{'p99 ms':>7} {'misses':>6}")
        for s in rss:
            if "skipped" in s:
                p(f"{s['tokens']:>13} skipped: {s['skipped']}")
            elif "raw" not in s:
                p(f"{'(start)':>13} {'':>9} {'':>7} {'':>9} {s['rss_kb'] * 1024 / 1e6:>8.1f}")
            else:
                p(f"{s['tokens']:>13} {s['loaded']:>9} {s['load_seconds']:>7.1f} {s['load_rate']:>9} "
                  f"{s['rss_kb'] * 1024 / 1e6:>8.1f} {s['rps']:>9.0f} {s['p99_ms']:>7.2f} "
                  f"{s['misses_during_run']:>6}")
        p("RSS = VmRSS of that Shroud process (MB = 10^6 bytes); req/s = cache-hit run over the loaded set.")
    p()
    p("target checks:")
    for v in verdicts:
        value = fmt(v["value"], ".2f" if isinstance(v["value"], float) else "")
        p(f"  {v['verdict']:<4}  {v['check']:<62} {value:>8}  (want {v['op']} {v['limit']})"
          + (f"  {v['note']}" if v["note"] else ""))
    p("=" * 100)


def write_csv(out, runs, summary, coalesce, rss, verdicts):
    with open(out / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["round", "target", "rps", "p50_ms", "p99_ms", "requests", "non_2xx", "socket_errors", "as_calls",
                    "other_cpu", "server_cpu_s"])
        for r in runs:
            w.writerow([r["round"], r["target"], r["rps"], r["p50_ms"], r["p99_ms"], r["requests"], r["non_2xx"],
                        r["socket_errors"], r["as_calls"], r.get("other_cpu", ""), r.get("server_cpu_s", "")])
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "name", "metric", "value"])
        for target, s in summary.items():
            for metric in ("rps", "p50_ms", "p99_ms", "rps_vs_nginx", "p99_vs_nginx", "cpu_us_per_request",
                           "cpu_efficiency_vs_nginx", "as_calls_per_s", "other_cpu", "errors"):
                w.writerow(["target", target, metric, s[metric]])
        for n, c in coalesce.items():
            for metric in ("requests", "introspections", "memory_misses"):
                w.writerow(["coalescing", f"{n}-instance", metric, c[metric]])
        for s in rss:
            for metric in ("loaded", "load_seconds", "load_rate", "rss_kb", "rps", "p99_ms", "skipped"):
                if metric in s:
                    w.writerow(["rss", s["tokens"], metric, s[metric]])
        for v in verdicts:
            w.writerow(["check", v["check"], "value", v["value"]])
            w.writerow(["check", v["check"], "verdict", v["verdict"]])


def report(out):
    meta = load_json(out / "meta.json") or {}
    runs, summary = aggregate(out)
    coalesce = {n: c for n in (1, 2) if (c := load_json(out / f"coalesce-{n}.json"))}
    rss = load_rss(out)
    verdicts = checks(summary, coalesce, rss)
    print_report(meta, summary, coalesce, rss, verdicts)
    (out / "results.json").write_text(json.dumps({
        "meta": meta, "targets": summary, "runs": runs, "coalescing": coalesce, "rss": rss, "checks": verdicts,
    }, indent=2))
    write_csv(out, runs, summary, coalesce, rss, verdicts)
    return 3 if any(v["verdict"] == "FAIL" for v in verdicts) else 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "wrk":
        print(one_line(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else Path(sys.argv[2]).stem))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "report":
        return report(Path(sys.argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
