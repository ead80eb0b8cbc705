#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for FUZZ_SECONDS each, prints the executions per
# target, and exits non-zero when any target found a crash (kept in fuzz/artifacts/<target>/). Not in CI.
# Settings (environment):
#   FUZZ_SECONDS=60          time per target        FUZZ_TARGETS="a b"   only these (default: all)
#   FUZZ_SANITIZER=none      none | address (ASan: slower, also catches memory errors in unsafe code)
#   FUZZ_MAX_LEN=8192        largest input, bytes
# The corpus grows in fuzz/corpus/<target>/ (not committed), seeded from fuzz/seeds/<target>/. Logs go to
# artifacts/fuzz/<UTC stamp>/. cargo-fuzz needs nightly compiler features: on a stable toolchain they are
# enabled with RUSTC_BOOTSTRAP=1.
# Reproduce a crash: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> artifacts/<target>/<file>)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-60}
SANITIZER=${FUZZ_SANITIZER:-none}
MAX_LEN=${FUZZ_MAX_LEN:-8192}
export RUSTC_BOOTSTRAP=1

log() { printf '[fuzz %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck source=scripts/lib/deps.sh
source "$ROOT/scripts/lib/deps.sh"
ensure_build_deps
command -v cargo-fuzz >/dev/null 2>&1 || { log "installing cargo-fuzz"; cargo install cargo-fuzz --locked; }

cd "$ROOT/fuzz"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"
OUT=$ROOT/artifacts/fuzz/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
log "building ${#TARGETS[@]} targets (sanitizer: $SANITIZER)"
cargo fuzz build -s "$SANITIZER" >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }

status=0
printf '%-22s %12s %9s %8s  %s\n' target executions "exec/s" corpus result >"$OUT/summary.txt"
for target in "${TARGETS[@]}"; do
    mkdir -p "corpus/$target" "seeds/$target"
    log "$target: ${SECONDS_EACH}s"
    set +e
    cargo fuzz run -s "$SANITIZER" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$OUT/$target.log" 2>&1
    code=$?
    set -e
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$OUT/$target.log" | tail -1)
    [[ -n $runs ]] || runs=$(sed -nE 's/^Done ([0-9]+) runs.*/\1/p' "$OUT/$target.log" | tail -1)
    runs=${runs:-0}
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$OUT/$target.log" | tail -1)
    corpus=$(find "corpus/$target" -type f | wc -l)
    if ((code == 0)); then
        result=ok
    else
        result="CRASH (exit $code): $(grep -hoE 'Test unit written to \S+' "$OUT/$target.log" | tail -1)"
        status=1
    fi
    printf '%-22s %12s %9s %8s  %s\n' "$target" "$runs" "${rate:-?}" "$corpus" "$result" | tee -a "$OUT/summary.txt"
done
log "summary: ${OUT#"$ROOT"/}/summary.txt"
cat "$OUT/summary.txt"
exit "$status"
