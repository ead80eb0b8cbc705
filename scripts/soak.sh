#!/usr/bin/env bash
# Soak test: Shroud (release) under steady load mixing cache hits, cache misses, cookie calls and invalid
# tokens, with Redis, the bench suite's fast authorization server (bench-as) and an nginx upstream, all on
# loopback. Passes when no request got an unexpected answer, no socket error happened, and Shroud's RSS
# grew by at most SOAK_MAX_DRIFT percent from the first sample after the warm-up to the last one.
# Not part of CI. Run the full 10 minutes on a quiet machine: other load changes throughput, not the
# verdict, but a busy machine gives a weaker test.
# Settings (environment):
#   SOAK_SECONDS=600        load duration               SOAK_CONNECTIONS=50   connections over the four kinds
#   SOAK_CACHE_TTL=15       cache.max_ttl_seconds: short, so that every cache tier and index reaches its
#                           steady state (entries expire as fast as they come) before the RSS baseline
#   SOAK_MAX_ENTRIES=20000  in-process cache capacity (small, so that it is full before the baseline)
#   SOAK_WARMUP=auto        seconds before the RSS baseline (default: a tenth of the run within 10..60,
#                           and at least 4 cache TTLs: the subject and client index keeps each key for its
#                           TTL and is swept when it has doubled, so it settles after 2 to 3 TTLs)
#   SOAK_SAMPLE=auto        seconds between RSS samples (10; 5 for runs under 2 minutes)
#   SOAK_MAX_DRIFT=10       allowed RSS drift, percent  SOAK_NO_BUILD=1       reuse target/release/{shroud,bench-as}
#   SOAK_SHROUD_BIN=PATH    soak this shroud binary instead (e.g. an older build, for a comparison)
# Results: artifacts/soak/<UTC stamp>/ (rss.tsv, wrk-<kind>.txt, summary.json, logs/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/scripts/bench
DURATION=${SOAK_SECONDS:-600}
CONNECTIONS=${SOAK_CONNECTIONS:-50}
SAMPLE=${SOAK_SAMPLE:-auto}
MAX_DRIFT=${SOAK_MAX_DRIFT:-10}
MAX_ENTRIES=${SOAK_MAX_ENTRIES:-20000}
CACHE_TTL=${SOAK_CACHE_TTL:-15}
WARMUP=${SOAK_WARMUP:-auto}
if [[ $WARMUP == auto ]]; then
    WARMUP=$((DURATION / 10))
    ((WARMUP < 10)) && WARMUP=10
    ((WARMUP > 60)) && WARMUP=60
    ((WARMUP < 4 * CACHE_TTL)) && WARMUP=$((4 * CACHE_TTL))
fi
if [[ $SAMPLE == auto ]]; then
    SAMPLE=10
    ((DURATION < 120)) && SAMPLE=5
fi
((DURATION > WARMUP + SAMPLE)) || { echo "SOAK_SECONDS must exceed the warm-up ($WARMUP s) + one sample" >&2; exit 2; }
# Connections per kind: 40 % cache hits, 30 % cookie calls, 10 % misses, the rest invalid tokens.
C_HIT=$((CONNECTIONS * 4 / 10))
C_COOKIE=$((CONNECTIONS * 3 / 10))
C_MISS=$((CONNECTIONS / 10))
((C_MISS > 0)) || C_MISS=1
C_INVALID=$((CONNECTIONS - C_HIT - C_COOKIE - C_MISS))
((C_HIT > 0 && C_COOKIE > 0 && C_INVALID > 0)) || { echo "SOAK_CONNECTIONS must be at least 10" >&2; exit 2; }
HIT_TOKENS=2000

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

while read -r var; do unset "$var"; done < <(compgen -e | grep '^SHROUD__' || true)

# ---------------------------------------------------------------------------------------------------------
# Processes: whatever is started is stopped on exit, error, Ctrl-C or TERM
# ---------------------------------------------------------------------------------------------------------
TMP=""
OUT=""
declare -A PID_OF=()
STARTED=()
LOADERS=()
SAMPLER=""

start() { # start NAME CMD...
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    PID_OF[$name]=$!
    STARTED+=("$name")
}

stop() { # stop NAME: TERM, then KILL after 5 s
    local pid=${PID_OF[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PID_OF[$1]"
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local status=$? pid i
    trap - EXIT INT TERM
    for pid in "${LOADERS[@]}" $SAMPLER; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop "${STARTED[i]}"; done
    if [[ -n $TMP && -n $OUT ]]; then
        mkdir -p "$OUT/logs"
        cp "$TMP"/*.log "$TMP"/*.toml "$TMP"/*.conf "$OUT/logs/" 2>/dev/null || true
    fi
    [[ -z $TMP ]] || rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------
# Prerequisites and builds
# ---------------------------------------------------------------------------------------------------------
# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"
ensure_debs wrk=wrk nginx=nginx redis-server=redis-server redis-cli=redis-tools curl=curl python3=python3
python3 -c 'import cryptography' 2>/dev/null || install_debs python3-cryptography
if [[ ${SOAK_NO_BUILD:-0} != 1 ]]; then
    log "building shroud and bench-as (release)"
    (cd "$ROOT" && cargo build --release --locked --bin shroud -p shroud && cargo build --release --locked -p shroud-testkit --bin bench-as)
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SHROUD=${SOAK_SHROUD_BIN:-$TARGET/release/shroud}
BENCH_AS=$TARGET/release/bench-as
[[ -x $SHROUD && -x $BENCH_AS ]] || die "$SHROUD or $BENCH_AS is missing (build them, or unset SOAK_NO_BUILD)"

TMP=$(mktemp -d /tmp/shroud-soak.XXXXXX)
chmod 755 "$TMP"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/artifacts/soak/$STAMP
mkdir -p "$OUT"

wait_http() { # wait_http URL: until it answers 2xx (30 s)
    local deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || die "$1 did not come up (logs: $TMP)"
        sleep 0.1
    done
}

render() { # render TEMPLATE OUT KEY=VALUE...: fills @KEY@ placeholders
    local template=$1 out=$2 edits=() pair
    shift 2
    for pair in "$@"; do edits+=(-e "s#@${pair%%=*}@#${pair#*=}#g"); done
    sed "${edits[@]}" "$template" >"$out"
    ! grep -q '@[A-Z_]*@' "$out" || die "unfilled placeholder in $out"
}

rss_kb() { sed -nE 's/^VmRSS:[[:space:]]+([0-9]+) kB$/\1/p' "/proc/$1/status"; }
# rss_parts PID: "anon file thp" in kB (heap and stacks; mapped files such as the binary's code; the part of
# anon held in transparent huge pages).
rss_parts() {
    printf '%s\t%s\t%s' "$(sed -nE 's/^RssAnon:[[:space:]]+([0-9]+) kB$/\1/p' "/proc/$1/status")" \
        "$(sed -nE 's/^RssFile:[[:space:]]+([0-9]+) kB$/\1/p' "/proc/$1/status")" \
        "$(sed -nE 's/^AnonHugePages:[[:space:]]+([0-9]+) kB$/\1/p' "/proc/$1/smaps_rollup")"
}

# ---------------------------------------------------------------------------------------------------------
# Servers: bench-as, Redis, the nginx upstream, Shroud with the Redis tier and the token handler
# ---------------------------------------------------------------------------------------------------------
read -r P_AS P_REDIS P_UP P_SHROUD < <(python3 "$BENCH_DIR/free_ports.py" 4)
"$SHROUD" keygen --phantom-key es256 >"$TMP/phantom-es256.pem"
KEY_SECRET=$("$SHROUD" keygen)
COOKIE_KEY=$("$SHROUD" keygen)

start as "$BENCH_AS" --addr "127.0.0.1:$P_AS"
start redis redis-server --bind 127.0.0.1 --port "$P_REDIS" --save "" --appendonly no --dir "$TMP"
render "$BENCH_DIR/nginx/upstream.conf.template" "$TMP/upstream.conf" TMP="$TMP" UPSTREAM_PORT="$P_UP"
start upstream nginx -c "$TMP/upstream.conf" -p "$TMP" -e "$TMP/upstream-error.log" -g 'daemon off;'
render "$BENCH_DIR/shroud/shroud.toml.template" "$TMP/shroud.toml" PORT="$P_SHROUD" AS_PORT="$P_AS" \
    PHANTOM_KEY="$TMP/phantom-es256.pem" BACKEND=redis REDIS_PORT="$P_REDIS" MAX_ENTRIES="$MAX_ENTRIES" \
    COOKIE_KEY="$COOKIE_KEY" UPSTREAM_PORT="$P_UP"
wait_http "http://127.0.0.1:$P_AS/stats"
until redis-cli -p "$P_REDIS" ping >/dev/null 2>&1; do sleep 0.1; done
start shroud env RUST_LOG=warn SHROUD__CACHE__MAX_TTL_SECONDS="$CACHE_TTL" SHROUD__INTROSPECTION__CLIENT_SECRET=gateway-secret \
    SHROUD__TOKEN_HANDLER__CLIENT_SECRET=webapp-secret SHROUD__CACHE__KEY_SECRET="$KEY_SECRET" \
    "$SHROUD" serve --config "$TMP/shroud.toml"
S=http://127.0.0.1:$P_SHROUD
wait_http "$S/readyz"
SHROUD_PID=${PID_OF[shroud]}

# Pre-flight: each kind gets what the load will expect of it.
seq 1 "$HIT_TOKENS" | sed 's/^/Bearer soak-hit-/' >"$TMP/hits.txt"
python3 "$BENCH_DIR/cookies.py" "$COOKIE_KEY" soak-ck "$HIT_TOKENS" >"$TMP/cookies.txt"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[[ $(code -H 'Authorization: Bearer soak-hit-1' "$S/api/x") == 200 ]] || die "pre-flight: a bearer token is not forwarded"
[[ $(code -H "Cookie: $(head -1 "$TMP/cookies.txt")" "$S/web/x") == 200 ]] || die "pre-flight: a cookie is not forwarded"
[[ $(code -H 'Authorization: Bearer invalid-preflight' "$S/api/x") == 401 ]] || die "pre-flight: an invalid token is not refused"
[[ $(curl -s -H 'Authorization: Bearer soak-preflight' "$S/api/echo-auth") =~ ^Bearer\ [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] ||
    die "pre-flight: the upstream does not get a JWT"
log "pre-flight ok; load: ${DURATION}s, $CONNECTIONS connections (hits $C_HIT, cookies $C_COOKIE, misses $C_MISS, invalid $C_INVALID)"

# ---------------------------------------------------------------------------------------------------------
# Load, with RSS samples
# ---------------------------------------------------------------------------------------------------------
loader() { # loader KIND CONNECTIONS EXPECTED URL [FILE HEADER]
    local kind=$1 conns=$2 expected=$3 url=$4
    shift 4
    wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s -s "$ROOT/scripts/soak/mix.lua" "$url" -- "$kind" "$expected" "$@" \
        >"$OUT/wrk-$kind.txt" 2>&1 &
    LOADERS+=($!)
}
printf 't_s\tshroud_rss_kb\tredis_used_kb\tshroud_anon_kb\tshroud_file_kb\tshroud_thp_kb\n' >"$OUT/rss.tsv"
sampler() {
    local t0=$SECONDS
    while kill -0 "$SHROUD_PID" 2>/dev/null; do
        printf '%d\t%s\t%s\t%s\n' $((SECONDS - t0)) "$(rss_kb "$SHROUD_PID")" \
            "$(($(redis-cli -p "$P_REDIS" info memory | sed -nE 's/^used_memory:([0-9]+).*/\1/p') / 1024))" \
            "$(rss_parts "$SHROUD_PID")" >>"$OUT/rss.tsv"
        sleep "$SAMPLE"
    done
}
sampler &
SAMPLER=$!
loader hit "$C_HIT" 200 "$S/api/soak" "$TMP/hits.txt" Authorization
loader cookie "$C_COOKIE" 200 "$S/web/soak" "$TMP/cookies.txt" Cookie
loader miss "$C_MISS" 200 "$S/api/soak"
loader invalid "$C_INVALID" 401 "$S/api/soak"
failed_loaders=0
for pid in "${LOADERS[@]}"; do wait "$pid" || failed_loaders=$((failed_loaders + 1)); done
LOADERS=()
kill -TERM "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=""
kill -0 "$SHROUD_PID" 2>/dev/null || die "Shroud is gone (logs: $OUT/logs)"
sleep 1
AFTER_KB=$(rss_kb "$SHROUD_PID")
AS_CALLS=$(curl -fsS "http://127.0.0.1:$P_AS/stats" | sed -E 's/.*"introspections": *([0-9]+).*/\1/')

# ---------------------------------------------------------------------------------------------------------
# Verdict
# ---------------------------------------------------------------------------------------------------------
python3 - "$OUT" "$WARMUP" "$MAX_DRIFT" "$DURATION" "$CONNECTIONS" "$AS_CALLS" "$failed_loaders" "$MAX_ENTRIES" "$CACHE_TTL" \
    "$AFTER_KB" <<'EOF'
import json, re, statistics, sys
out, warmup, max_drift, duration, connections, as_calls, failed_loaders, max_entries, cache_ttl, after_kb = sys.argv[1:]
warmup, max_drift, duration = int(warmup), float(max_drift), int(duration)
kinds, problems = {}, []
for kind in ("hit", "cookie", "miss", "invalid"):
    text = open(f"{out}/wrk-{kind}.txt").read()
    m = re.search(r"^soak \S+ requests=(\d+) expected=(\d+) unexpected=(\d+) statuses=(\S*) "
                  r"errors=connect:(\d+),read:(\d+),write:(\d+),timeout:(\d+) p99_ms=([\d.]+)$", text, re.M)
    if not m:
        problems.append(f"{kind}: no wrk summary (see wrk-{kind}.txt)")
        continue
    req, good, bad, statuses, *errors, p99 = m.groups()
    socket = sum(int(e) for e in errors)
    kinds[kind] = {"requests": int(req), "expected": int(good), "unexpected": int(bad), "statuses": statuses,
                   "socket_errors": socket, "p99_ms": float(p99)}
    if int(bad):
        problems.append(f"{kind}: {bad} unexpected answers ({statuses})")
    if socket:
        problems.append(f"{kind}: {socket} socket errors")
if int(failed_loaders):
    problems.append(f"{failed_loaders} wrk processes failed")
samples = [tuple(map(int, l.split("\t"))) for l in open(f"{out}/rss.tsv").read().splitlines()[1:] if l.count("\t") == 5]
after = [s for s in samples if s[0] >= warmup]
drift = windowed = None
if len(after) < 2:
    problems.append("not enough RSS samples after the warm-up")
else:
    base, last = after[0][1], after[-1][1]
    drift = (last - base) / base * 100
    if drift > max_drift:
        problems.append(f"RSS drift {drift:.1f} % > {max_drift} %")
    # For reading the verdict: single samples move by a few MB either way; medians of the first and last
    # six samples after the warm-up show the trend.
    k = min(6, len(after) // 2)
    first_median = statistics.median(s[1] for s in after[:k])
    last_median = statistics.median(s[1] for s in after[-k:])
    windowed = (last_median - first_median) / first_median * 100
total = sum(k["requests"] for k in kinds.values())
summary = {
    "duration_s": duration, "connections": int(connections), "warmup_s": warmup, "max_entries": int(max_entries), "cache_ttl_s": int(cache_ttl),
    "requests": total, "req_per_s": round(total / duration), "introspections": int(as_calls), "kinds": kinds,
    "rss_kb": {"start": samples[0][1] if samples else None, "baseline": after[0][1] if after else None,
               "peak": max(s[1] for s in samples) if samples else None, "last": after[-1][1] if after else None},
    "redis_used_kb": {"baseline": after[0][2] if after else None, "last": after[-1][2] if after else None},
    "rss_parts_kb": {when: None if not after else dict(zip(("anon", "file", "thp"), s[3:]))
                     for when, s in (("baseline", after[0] if after else None), ("last", after[-1] if after else None))},
    "rss_drift_percent": None if drift is None else round(drift, 2), "max_drift_percent": max_drift,
    "rss_drift_medians_percent": None if drift is None else round(windowed, 2), "rss_after_load_kb": int(after_kb),
    "passed": not problems, "problems": problems,
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
for kind, k in kinds.items():
    print(f"  {kind:<8} {k['requests']:>9} requests  expected {k['expected']:>9}  unexpected {k['unexpected']}"
          f"  socket errors {k['socket_errors']}  p99 {k['p99_ms']} ms  ({k['statuses']})")
r = summary["rss_kb"]
print(f"  total {total} requests ({summary['req_per_s']}/s), {as_calls} introspections")
print(f"  RSS: start {r['start']} kB, baseline (t={warmup}s) {r['baseline']} kB, peak {r['peak']} kB, last {r['last']} kB:"
      f" drift {summary['rss_drift_percent']} % (max {max_drift} %); medians of the first and last 6 samples:"
      f" {summary['rss_drift_medians_percent']} %; 1 s after the load {after_kb} kB; Redis {summary['redis_used_kb']}")
print(f"  RSS parts (kB): {summary['rss_parts_kb']}")
print("  PASSED" if not problems else "  FAILED: " + "; ".join(problems))
sys.exit(0 if not problems else 1)
EOF
