#!/usr/bin/env bash
# Shroud benchmark suite: every target on loopback, round-robin, one report.
# See scripts/bench/README.md. Settings (environment):
#   BENCH_DURATION=10   seconds per wrk run          BENCH_ROUNDS=3    rounds (median reported)
#   BENCH_TOKENS=10000  distinct tokens per target   BENCH_MILLION=auto|1|0  the 1M-token RSS step
#   BENCH_PIN=0|1       1: wrk on CPU 1, every server on CPU 0 (default 0: no pinning, all share both)
#   BENCH_COALESCE=500  concurrent first uses        BENCH_STRICT=1    exit 1 when a target check FAILs
#   BENCH_QUIET_WAIT=30 seconds to wait before each run for other processes to use < 0.2 cores
#   BENCH_FAKE_AS=1     use the Python stand-in (fake_as.py) instead of bench-as
#   BENCH_TARGETS="nginx shroud-phantom"  measure only these (default: all eight)
#   BENCH_EXTRAS=0      skip the coalescing and memory (RSS) sections
#   BENCH_NO_BUILD=1    skip cargo build             BENCH_KEEP_TMP=1  keep the temp dir (configs, logs)
#   BENCH_COMPARE=PATH  another shroud binary (an older build, an experiment), measured in the same rounds
#                       as targets cmp-none, cmp-phantom and cmp-cookie (added to the default targets)
#   BENCH_COMPARE_COOKIE_FORMAT=bound  the cookie format cmp-cookie sends: curity_v1 for a build from
#                       before cookie binding (token_handler.cookie_format)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
TOKENS=${BENCH_TOKENS:-10000}
MILLION=${BENCH_MILLION:-auto}
PIN=${BENCH_PIN:-0}
COALESCE_N=${BENCH_COALESCE:-500}
THREADS=2
CONNECTIONS=50
WRK_OPTS=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
COMPARE=${BENCH_COMPARE:-}
COMPARE_COOKIE_FORMAT=${BENCH_COMPARE_COOKIE_FORMAT:-bound}
DEFAULT_TARGETS="upstream nginx nginx-njs shroud-none shroud-phantom shroud-redis shroud-cookie shroud-miss"
[[ -z $COMPARE ]] || DEFAULT_TARGETS+=" cmp-none cmp-phantom cmp-cookie"
read -r -a TARGETS <<<"${BENCH_TARGETS:-$DEFAULT_TARGETS}"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Environment overrides of Shroud's config would change the targets: drop them.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^SHROUD__' || true)

# ---------------------------------------------------------------------------------------------------------
# Processes and cleanup: whatever is started is stopped on exit, error, Ctrl-C or TERM
# ---------------------------------------------------------------------------------------------------------
TMP=""
OUT=""
declare -A PID_OF=()
STARTED=()
BG_WRK=""

# start NAME CMD...: runs CMD in the background (output in $TMP/NAME.log) and remembers its pid.
start() {
    local name=$1
    shift
    "${SERVER_PIN[@]}" "$@" >"$TMP/$name.log" 2>&1 &
    PID_OF[$name]=$!
    STARTED+=("$name")
}

# stop NAME: TERM, then KILL after 5 s.
stop() {
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
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $BG_WRK ]]; then kill -TERM "$BG_WRK" 2>/dev/null || true; wait "$BG_WRK" 2>/dev/null || true; fi
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop "${STARTED[i]}"; done
    if [[ -n $TMP && -n $OUT ]]; then
        mkdir -p "$OUT/logs"
        cp "$TMP"/*.log "$TMP"/*.conf "$TMP"/*.toml "$OUT/logs/" 2>/dev/null || true
    fi
    if [[ -z $TMP ]]; then :; elif [[ ${BENCH_KEEP_TMP:-0} == 1 ]]; then log "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------
# Prerequisites and builds
# ---------------------------------------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx)
[[ -f /usr/lib/nginx/modules/ngx_http_js_module.so ]] || missing+=(libnginx-mod-http-js)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    log "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography

USE_FAKE_AS=${BENCH_FAKE_AS:-0}
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    log "building shroud (release)"
    (cd "$ROOT" && cargo build --release --locked --bin shroud -p shroud)
    if [[ $USE_FAKE_AS != 1 ]]; then
        log "building bench-as (release)"
        if ! (cd "$ROOT" && cargo build --release --locked -p shroud-testkit --bin bench-as); then
            log "WARNING: bench-as did not build; using the Python stand-in fake_as.py"
            USE_FAKE_AS=1
        fi
    fi
fi
SHROUD=$ROOT/target/release/shroud
[[ -x $SHROUD ]] || die "$SHROUD is missing"
if [[ $USE_FAKE_AS != 1 && -x $ROOT/target/release/bench-as ]]; then
    AS_CMD=("$ROOT/target/release/bench-as")
    AS_KIND="bench-as (Rust)"
else
    AS_CMD=(python3 "$BENCH_DIR/fake_as.py")
    AS_KIND="fake_as.py (Python stand-in: miss-path numbers are NOT comparable)"
fi

# ---------------------------------------------------------------------------------------------------------
# Temp dir, results dir, pinning
# ---------------------------------------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/shroud-bench.XXXXXX)
chmod 755 "$TMP"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/artifacts/bench/$STAMP
mkdir -p "$OUT/raw" "$TMP/tokens"
if [[ $PIN == 1 ]]; then
    SERVER_PIN=(taskset -c 0)
    WRK_PIN=(taskset -c 1)
    PINNING="pinned: wrk on CPU 1; nginx, Shroud, bench-as, redis on CPU 0"
else
    SERVER_PIN=()
    WRK_PIN=()
    PINNING="not pinned: wrk and every server share both CPUs"
fi

# wait_http URL [SECONDS]: until URL answers 2xx.
wait_http() {
    local url=$1 deadline=$((SECONDS + ${2:-30}))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        ((SECONDS < deadline)) || die "$url did not come up (logs: $TMP)"
        sleep 0.1
    done
}

# wait_listening URL [SECONDS]: until URL answers at all (any status).
wait_listening() {
    local url=$1 deadline=$((SECONDS + ${2:-30}))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "$url") != 000 ]]; do
        ((SECONDS < deadline)) || die "$url did not come up (logs: $TMP)"
        sleep 0.1
    done
}

# render TEMPLATE OUT KEY=VALUE...: fills @KEY@ placeholders.
render() {
    local template=$1 out=$2 edits=() pair
    shift 2
    for pair in "$@"; do edits+=(-e "s#@${pair%%=*}@#${pair#*=}#g"); done
    sed "${edits[@]}" "$template" >"$out"
    ! grep -q '@[A-Z_]*@' "$out" || die "unfilled placeholder in $out"
}

read -r P_UP P_PROXY P_NJS P_NJS_AUTH P_AS P_REDIS P_S1 P_S2 P_S3 P_CA P_CB P_RSS P_CHK_AS P_CHK P_CHK_AUTH P_CMP \
    < <(python3 "$BENCH_DIR/free_ports.py" 16)

as_count() { curl -fsS "http://127.0.0.1:$P_AS/stats" | sed -E 's/.*"introspections": *([0-9]+).*/\1/'; }
active_count() { # introspections_total{result="active"} of the Shroud instance on port $1
    curl -fsS "http://127.0.0.1:$1/metrics" | sed -nE 's/^shroud_introspections_total\{result="active"\} ([0-9]+)$/\1/p' |
        grep . || echo 0
}
rss_kb() { sed -nE 's/^VmRSS:[[:space:]]+([0-9]+) kB$/\1/p' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------------------
# Configs and servers
# ---------------------------------------------------------------------------------------------------------
"$SHROUD" keygen --phantom-key es256 >"$TMP/phantom-es256.pem"
KEY_SECRET=$("$SHROUD" keygen)
COOKIE_KEY=$("$SHROUD" keygen)

nginx_conf() { # nginx_conf TEMPLATE NAME AS_PORT PORT AUTH_PORT
    render "$BENCH_DIR/nginx/$1.conf.template" "$TMP/$2.conf" TMP="$TMP" BENCH="$BENCH_DIR" NAME="$2" \
        UPSTREAM_PORT="$P_UP" PROXY_PORT="$P_PROXY" AS_PORT="$3" NJS_PORT="$4" NJS_AUTH_PORT="$5"
}
start_nginx() { # start_nginx NAME
    start "$1" nginx -c "$TMP/$1.conf" -p "$TMP" -e "$TMP/$1-error.log" -g 'daemon off;'
}
start_shroud() { # start_shroud NAME PORT BACKEND MAX_ENTRIES [BINARY]
    render "$BENCH_DIR/shroud/shroud.toml.template" "$TMP/$1.toml" PORT="$2" AS_PORT="$P_AS" \
        PHANTOM_KEY="$TMP/phantom-es256.pem" BACKEND="$3" REDIS_PORT="$P_REDIS" \
        MAX_ENTRIES="$4" COOKIE_KEY="$COOKIE_KEY" UPSTREAM_PORT="$P_UP"
    # Secrets come from the environment, as the README recommends, never from the file.
    start "$1" env RUST_LOG=warn SHROUD__INTROSPECTION__CLIENT_SECRET=gateway-secret \
        SHROUD__TOKEN_HANDLER__CLIENT_SECRET=webapp-secret SHROUD__CACHE__KEY_SECRET="$KEY_SECRET" \
        "${5:-$SHROUD}" serve --config "$TMP/$1.toml"
}

log "temp dir $TMP; results in ${OUT#"$ROOT"/}"
log "authorization server: $AS_KIND"
start as "${AS_CMD[@]}" --addr "127.0.0.1:$P_AS"
start redis redis-server --bind 127.0.0.1 --port "$P_REDIS" --save "" --appendonly no --dir "$TMP"
nginx_conf upstream upstream "$P_AS" "$P_NJS" "$P_NJS_AUTH"
nginx_conf proxy proxy "$P_AS" "$P_NJS" "$P_NJS_AUTH"
nginx_conf njs njs "$P_AS" "$P_NJS" "$P_NJS_AUTH"
start_nginx upstream
start_nginx proxy
start_nginx njs
wait_http "http://127.0.0.1:$P_AS/stats"
until redis-cli -p "$P_REDIS" ping >/dev/null 2>&1; do sleep 0.1; done
start_shroud shroud-memory "$P_S1" memory 100000  # targets shroud-none, -phantom, -cookie; coalescing (1)
start_shroud shroud-redis "$P_S2" redis 0         # target shroud-redis: Redis tier only
start_shroud shroud-miss "$P_S3" memory 100000    # target shroud-miss
for port in "$P_UP" "$P_PROXY" "$P_NJS"; do wait_listening "http://127.0.0.1:$port/"; done
if [[ -n $COMPARE ]]; then
    [[ -x $COMPARE ]] || die "BENCH_COMPARE=$COMPARE is not an executable"
    start_shroud shroud-cmp "$P_CMP" memory 100000 "$COMPARE" # targets cmp-none, -phantom, -cookie
    wait_http "http://127.0.0.1:$P_CMP/readyz"
fi
for port in "$P_S1" "$P_S2" "$P_S3"; do wait_http "http://127.0.0.1:$port/readyz"; done

UP=http://127.0.0.1:$P_UP
PROXY=http://127.0.0.1:$P_PROXY
NJS=http://127.0.0.1:$P_NJS
S1=http://127.0.0.1:$P_S1
S2=http://127.0.0.1:$P_S2
S3=http://127.0.0.1:$P_S3
CMP=http://127.0.0.1:$P_CMP

# ---------------------------------------------------------------------------------------------------------
# Pre-flight: every target does what it claims (and rejects what it must) before anything is measured
# ---------------------------------------------------------------------------------------------------------
expect() { # expect WHAT EXPECTED-REGEX ACTUAL
    [[ $3 =~ $2 ]] || die "pre-flight: $1: expected /$2/, got '$3'"
    log "pre-flight ok: $1"
}
JWT_RE='^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
body() { curl -fsS "$@"; }
PRE_COOKIE=$(python3 "$BENCH_DIR/cookies.py" "$COOKIE_KEY" preflight-cookie 1)
PRE_COOKIE_CMP=$(python3 "$BENCH_DIR/cookies.py" "$COOKIE_KEY" preflight-cookie 1 "$COMPARE_COOKIE_FORMAT")

expect "upstream answers" '^\{"ok":true\}$' "$(body "$UP/api/bench")"
expect "nginx proxies" '^\{"ok":true\}$' "$(body "$PROXY/api/bench")"
expect "nginx-njs without a token → 401" '^401$' "$(code "$NJS/api/bench")"
expect "nginx-njs forwards a JWT" "$JWT_RE" "$(body -H 'Authorization: Bearer preflight-njs' "$NJS/echo-auth")"
expect "shroud-none forwards no Authorization" '^$' "$(body -H 'Authorization: Bearer preflight' "$S1/none/echo-auth" || echo failed)"
expect "shroud-phantom without a token → 401" '^401$' "$(code "$S1/api/bench")"
expect "shroud-phantom forwards a JWT" "$JWT_RE" "$(body -H 'Authorization: Bearer preflight-s1' "$S1/api/echo-auth")"
expect "shroud-cookie without a cookie → 401" '^401$' "$(code "$S1/web/bench")"
expect "shroud-cookie forwards a JWT" "$JWT_RE" "$(body -H "Cookie: $PRE_COOKIE" "$S1/web/echo-auth")"
expect "shroud-redis forwards a JWT" "$JWT_RE" "$(body -H 'Authorization: Bearer preflight-s2' "$S2/api/echo-auth")"
[[ $(redis-cli -p "$P_REDIS" dbsize) -ge 1 ]] || die "pre-flight: shroud-redis stored nothing in Redis"
log "pre-flight ok: shroud-redis stored its entry in Redis"
expect "shroud-miss forwards a JWT" "$JWT_RE" "$(body -H 'Authorization: Bearer preflight-s3' "$S3/api/echo-auth")"
if [[ -n $COMPARE ]]; then
    expect "cmp-phantom forwards a JWT" "$JWT_RE" "$(body -H 'Authorization: Bearer preflight-cmp' "$CMP/api/echo-auth")"
    expect "cmp-cookie forwards a JWT" "$JWT_RE" "$(body -H "Cookie: $PRE_COOKIE_CMP" "$CMP/web/echo-auth")"
fi

# nginx-njs must refuse a token its authorization server calls inactive: the same config against the
# stand-in AS in --inactive mode (bench-as calls every token active).
start check-as python3 "$BENCH_DIR/fake_as.py" --addr "127.0.0.1:$P_CHK_AS" --inactive
nginx_conf njs njs-check "$P_CHK_AS" "$P_CHK" "$P_CHK_AUTH"
start_nginx njs-check
wait_http "http://127.0.0.1:$P_CHK_AS/stats"
wait_listening "http://127.0.0.1:$P_CHK/"
expect "nginx-njs with an inactive token → 401" '^401$' \
    "$(code -H 'Authorization: Bearer inactive-token' "http://127.0.0.1:$P_CHK/api/bench")"
expect "nginx-njs asked the AS about it" '"introspections": 1' "$(body "http://127.0.0.1:$P_CHK_AS/stats")"
stop njs-check
stop check-as

# ---------------------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------------------
printf '' >"$OUT/runs.jsonl"
printf '' >"$OUT/rss.jsonl"

# load_until COUNTER_CMD TARGET SECONDS WRK-ARGS...: runs wrk in the background until COUNTER_CMD prints
# at least TARGET, then stops it. Sets LOAD_SECONDS to the time that took.
LOAD_SECONDS=0
load_until() {
    local counter=$1 target=$2 limit=$3 started=$SECONDS now t0 t1
    shift 3
    t0=$(date +%s.%N)
    "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d3600s "$@" >"$TMP/load-wrk.log" 2>&1 &
    BG_WRK=$!
    while now=$($counter) && ((now < target)); do
        if ((SECONDS - started > limit)) || ! kill -0 "$BG_WRK" 2>/dev/null; then
            die "loading stopped at $now of $target (wrk: $(tail -3 "$TMP/load-wrk.log" | tr '\n' ' '))"
        fi
        sleep 0.1
    done
    t1=$(date +%s.%N)
    kill -TERM "$BG_WRK" 2>/dev/null || true
    wait "$BG_WRK" 2>/dev/null || true
    BG_WRK=""
    LOAD_SECONDS=$(python3 -c "print(round($t1 - $t0, 2))")
}

# warm NAME URL FILE HEADER: every value of FILE once through URL (each a first use → one introspection).
warm() {
    local name=$1 url=$2 file=$3 header=$4 base count
    base=$(as_count)
    count=$(wc -l <"$file")
    load_until as_count $((base + count)) 300 -s "$BENCH_DIR/lua/tokens.lua" "$url" -- "$file" "$header" seq "$THREADS"
    log "warmed $name: $count tokens in ${LOAD_SECONDS}s"
}

# wait_quiet: waits (up to BENCH_QUIET_WAIT seconds, default 30) until processes other than ours use less
# than 0.2 cores, so that a compile elsewhere on the machine does not land in a measurement.
wait_quiet() {
    local limit=${BENCH_QUIET_WAIT:-30} started=$SECONDS cpu0 cpu1 other
    while :; do
        cpu0=$(python3 "$BENCH_DIR/cpu.py" snap "${PID_OF[@]}")
        sleep 1
        cpu1=$(python3 "$BENCH_DIR/cpu.py" snap "${PID_OF[@]}")
        # shellcheck disable=SC2086
        other=$(python3 "$BENCH_DIR/cpu.py" other $cpu0 $cpu1 0 1)
        python3 -c "import sys; sys.exit(0 if $other < 0.2 else 1)" && return 0
        if ((SECONDS - started >= limit)); then
            log "machine still busy (other processes use $other cores); measuring anyway"
            return 0
        fi
    done
}

# servers_of TARGET: the PIDs of the processes that do a target's work (the upstream's excluded), whose CPU
# per request the report gives.
servers_of() {
    case $1 in
    upstream) echo "${PID_OF[upstream]}" ;;
    nginx) echo "${PID_OF[proxy]}" ;;
    nginx-njs) echo "${PID_OF[njs]}" ;;
    shroud-none | shroud-phantom | shroud-cookie) echo "${PID_OF[shroud-memory]}" ;;
    shroud-redis) echo "${PID_OF[shroud-redis]} ${PID_OF[redis]}" ;;
    shroud-miss) echo "${PID_OF[shroud-miss]}" ;;
    cmp-*) echo "${PID_OF[shroud-cmp]}" ;;
    esac
}

# measure ROUND TARGET URL SCRIPT SCRIPT-ARGS...: one measured wrk run. Also records the introspections the
# authorization server answered meanwhile, the CPU the target's own servers used (user + system), and the
# user-mode CPU that processes other than ours (other sessions on this machine) used meanwhile, in cores.
measure() {
    local round=$1 target=$2 url=$3 script=$4 raw="$OUT/raw/r$1-$2.txt" before after cpu0 cpu1 wrk_user other
    local servers server0 server1
    shift 4
    sleep 1
    wait_quiet
    read -r -a servers <<<"$(servers_of "$target")"
    before=$(as_count)
    server0=$(python3 "$BENCH_DIR/cpu.py" server "${servers[@]}")
    cpu0=$(python3 "$BENCH_DIR/cpu.py" snap "${PID_OF[@]}")
    wrk_user=$({ TIMEFORMAT=%U; time "${WRK_PIN[@]}" wrk "${WRK_OPTS[@]}" -s "$BENCH_DIR/lua/$script" "$url" -- "$@" \
        >"$raw" 2>&1; } 2>&1) || die "wrk failed for $target: $(cat "$raw")"
    cpu1=$(python3 "$BENCH_DIR/cpu.py" snap "${PID_OF[@]}")
    server1=$(python3 "$BENCH_DIR/cpu.py" server "${servers[@]}")
    after=$(as_count)
    # shellcheck disable=SC2086 # word splitting of "TOTAL OURS" is meant
    other=$(python3 "$BENCH_DIR/cpu.py" other $cpu0 $cpu1 "$wrk_user" "$DURATION")
    printf '{"round":%d,"target":"%s","raw":"raw/r%d-%s.txt","duration":%s,"as_calls":%d,"other_cpu":%s,"server_cpu_s":%s}\n' \
        "$round" "$target" "$round" "$target" "$DURATION" $((after - before)) "$other" \
        "$(python3 -c "print(round($server1 - $server0, 2))")" >>"$OUT/runs.jsonl"
    log "round $round $(python3 "$BENCH_DIR/report.py" wrk "$raw" "$target"); AS calls $((after - before)); other load $other cores"
}

selected() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

run_target() { # run_target ROUND TARGET
    local r=$1 tok=$TMP/tokens
    case $2 in
    upstream) measure "$r" "$2" "$UP/api/bench" tokens.lua "$tok/bearer-r$r.txt" Authorization random ;;
    nginx) measure "$r" "$2" "$PROXY/api/bench" tokens.lua "$tok/bearer-r$r.txt" Authorization random ;;
    nginx-njs) measure "$r" "$2" "$NJS/api/bench" tokens.lua "$tok/njs-r$r.txt" Authorization random ;;
    shroud-none) measure "$r" "$2" "$S1/none/bench" tokens.lua "$tok/bearer-r$r.txt" Authorization random ;;
    shroud-phantom) measure "$r" "$2" "$S1/api/bench" tokens.lua "$tok/bearer-r$r.txt" Authorization random ;;
    shroud-redis) measure "$r" "$2" "$S2/api/bench" tokens.lua "$tok/redis-r$r.txt" Authorization random ;;
    shroud-cookie) measure "$r" "$2" "$S1/web/bench" tokens.lua "$tok/cookie-r$r.txt" Cookie random ;;
    shroud-miss) measure "$r" "$2" "$S3/api/bench" unique.lua "miss-r$r" ;;
    cmp-none) measure "$r" "$2" "$CMP/none/bench" tokens.lua "$tok/bearer-r$r.txt" Authorization random ;;
    cmp-phantom) measure "$r" "$2" "$CMP/api/bench" tokens.lua "$tok/bearer-r$r.txt" Authorization random ;;
    cmp-cookie) measure "$r" "$2" "$CMP/web/bench" tokens.lua "$tok/cmp-cookie-r$r.txt" Cookie random ;;
    *) die "unknown target $2" ;;
    esac
}

# Rounds: fresh token sets each round (cache entries live 5 minutes), warmed first; then every target
# once, starting one further along the list each round so that no target always runs first or last.
for ((r = 1; r <= ROUNDS; r++)); do
    log "round $r/$ROUNDS: preparing $TOKENS tokens per cache-hit target"
    for set in bearer:tok njs:njs redis:rds; do
        seq 1 "$TOKENS" | sed "s/^/Bearer ${set#*:}-r$r-/" >"$TMP/tokens/${set%%:*}-r$r.txt"
    done
    python3 "$BENCH_DIR/cookies.py" "$COOKIE_KEY" "ck-r$r" "$TOKENS" >"$TMP/tokens/cookie-r$r.txt"
    [[ -z $COMPARE ]] || python3 "$BENCH_DIR/cookies.py" "$COOKIE_KEY" "ck-r$r" "$TOKENS" "$COMPARE_COOKIE_FORMAT" >"$TMP/tokens/cmp-cookie-r$r.txt"
    ! selected nginx-njs || warm nginx-njs "$NJS/api/bench" "$TMP/tokens/njs-r$r.txt" Authorization
    ! selected shroud-phantom || warm shroud-phantom "$S1/api/bench" "$TMP/tokens/bearer-r$r.txt" Authorization
    ! selected shroud-redis || warm shroud-redis "$S2/api/bench" "$TMP/tokens/redis-r$r.txt" Authorization
    ! selected shroud-cookie || warm shroud-cookie "$S1/web/bench" "$TMP/tokens/cookie-r$r.txt" Cookie
    ! selected cmp-phantom || warm cmp-phantom "$CMP/api/bench" "$TMP/tokens/bearer-r$r.txt" Authorization
    ! selected cmp-cookie || warm cmp-cookie "$CMP/web/bench" "$TMP/tokens/cmp-cookie-r$r.txt" Cookie
    for ((i = 0; i < ${#TARGETS[@]}; i++)); do
        run_target "$r" "${TARGETS[(i + r - 1) % ${#TARGETS[@]}]}"
    done
done

# Coalescing: N concurrent first uses of one fresh token, on one instance, then split over two instances
# sharing one Redis (memory tier on, as deployed).
coalescing() {
    log "coalescing: $COALESCE_N concurrent first uses, 1 instance"
    python3 "$BENCH_DIR/coalesce.py" --as-url "http://127.0.0.1:$P_AS" --n "$COALESCE_N" \
        --token "coalesce-one-$STAMP" "$S1" >"$OUT/coalesce-1.json"
    log "coalescing (1 instance): $(cat "$OUT/coalesce-1.json")"
    start_shroud shroud-a "$P_CA" redis 100000
    start_shroud shroud-b "$P_CB" redis 100000
    wait_http "http://127.0.0.1:$P_CA/readyz"
    wait_http "http://127.0.0.1:$P_CB/readyz"
    log "coalescing: $COALESCE_N concurrent first uses, 2 instances sharing Redis"
    python3 "$BENCH_DIR/coalesce.py" --as-url "http://127.0.0.1:$P_AS" --n "$COALESCE_N" \
        --token "coalesce-two-$STAMP" "http://127.0.0.1:$P_CA" "http://127.0.0.1:$P_CB" >"$OUT/coalesce-2.json"
    log "coalescing (2 instances): $(cat "$OUT/coalesce-2.json")"
    stop shroud-a
    stop shroud-b
}

rss_active() { active_count "$P_RSS"; }

# Memory: RSS of a fresh instance after loading 1k, 100k (and 1M) distinct tokens, with a cache-hit run at
# each size. Shroud-miss and the others are idle meanwhile.
memory_steps() {
    start_shroud shroud-rss "$P_RSS" memory 2000000
    RSS_URL=http://127.0.0.1:$P_RSS
    wait_http "$RSS_URL/readyz"
    sleep 1
    RSS_PID=${PID_OF[shroud-rss]}
    printf '{"tokens":0,"loaded":0,"rss_kb":%d}\n' "$(rss_kb "$RSS_PID")" >>"$OUT/rss.jsonl"
    local size loaded=0 rate=0 estimate took rss active raw before misses
    for size in 1000 100000 1000000; do
        if ((size == 1000000)); then
            if [[ $MILLION == 0 ]]; then
                log "1M step skipped (BENCH_MILLION=0)"
                break
            fi
            if [[ $MILLION == auto ]]; then
                estimate=$(python3 -c "print(int(($size - $loaded) / $rate))")
                if ((estimate > 120)); then
                    log "1M step skipped: loading would take ~${estimate}s at ${rate}/s (BENCH_MILLION=1 forces it)"
                    printf '{"tokens":%d,"skipped":"loading would take ~%ds (at %s tokens/s); BENCH_MILLION=1 forces it"}\n' \
                        "$size" "$estimate" "$rate" >>"$OUT/rss.jsonl"
                    break
                fi
            fi
        fi
        log "memory: loading tokens $((loaded + 1))..$size"
        load_until rss_active "$size" 900 -s "$BENCH_DIR/lua/range.lua" "$RSS_URL/api/bench" -- \
            $((loaded + 1)) "$size" seq "$THREADS"
        took=$LOAD_SECONDS
        rate=$(python3 -c "print(round(($size - $loaded) / max($took, 0.01)))")
        loaded=$size
        sleep 1
        rss=$(rss_kb "$RSS_PID")
        active=$(rss_active)
        raw=raw/rss-$size.txt
        before=$(rss_active)
        "${WRK_PIN[@]}" wrk "${WRK_OPTS[@]}" -s "$BENCH_DIR/lua/range.lua" "$RSS_URL/api/bench" -- 1 "$size" random \
            "$THREADS" >"$OUT/$raw" 2>&1
        misses=$(($(rss_active) - before))
        printf '{"tokens":%d,"loaded":%d,"load_seconds":%s,"load_rate":%s,"rss_kb":%d,"raw":"%s","misses_during_run":%d}\n' \
            "$size" "$active" "$took" "$rate" "$rss" "$raw" "$misses" >>"$OUT/rss.jsonl"
        log "memory: $active tokens loaded in ${took}s (${rate}/s), VmRSS $((rss / 1024)) MiB; $(python3 "$BENCH_DIR/report.py" wrk "$OUT/$raw" hit-run)"
    done
    stop shroud-rss
}

if [[ ${BENCH_EXTRAS:-1} == 1 ]]; then
    coalescing
    memory_steps
fi

# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------
python3 - "$OUT/meta.json" <<EOF
import json, sys
json.dump({
    "stamp": "$STAMP",
    "duration_s": $DURATION, "rounds": $ROUNDS, "tokens": $TOKENS,
    "wrk": "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency",
    "pinning": "$PINNING",
    "authorization_server": "$AS_KIND",
    "nginx": "$(nginx -v 2>&1 | sed 's/.*nginx\///')",
    "njs": "$(dpkg-query -W -f='${Version}' libnginx-mod-http-js 2>/dev/null)",
    "wrk_version": "$(wrk -v 2>&1 | head -1 | awk '{print $2}')",
    "redis": "$(redis-server --version | sed -E 's/.* v=([^ ]+).*/\1/')",
    "shroud_commit": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')",
    "cpus": $(nproc),
    "kernel": "$(uname -r)",
    "logging": "RUST_LOG=warn for Shroud (no access log); nginx access_log off",
}, open(sys.argv[1], "w"), indent=2)
EOF
status=0
python3 "$BENCH_DIR/report.py" report "$OUT" || status=$?
cp "$OUT/results.json" "$ROOT/artifacts/bench/latest.json"
cp "$OUT/results.csv" "$ROOT/artifacts/bench/latest.csv"
log "results: ${OUT#"$ROOT"/}/results.{json,csv} (copied to artifacts/bench/latest.{json,csv})"
if ((status == 3)) && [[ ${BENCH_STRICT:-0} != 1 ]]; then status=0; fi
exit "$status"
