#!/usr/bin/env bash
# The README's two commands on a fresh machine: for each Debian release, a pristine container made by
# debootstrap (minbase, plus this machine's CA bundle for its TLS-inspecting egress) with only Rust added
# (this machine's toolchain, mounted read-only), runs
#   scripts/demo.sh   until "Shroud is running", then the README's curl phantom swap, then Ctrl-C;
#   scripts/test.sh   every test, which must pass.
# Everything else comes from the registries, installed by the scripts themselves. The working tree (tracked
# and untracked files that git does not ignore) is copied in, so the host's checkout is never written.
# Usage: scripts/fresh-debian-test.sh [bookworm|trixie]...   (default: bookworm trixie)
# Takes long: each release compiles Shroud from scratch twice (release for the demo, debug for the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
source scripts/lib/containers.sh
suites=("$@")
[[ ${#suites[@]} -gt 0 ]] || suites=(bookworm trixie)
command -v rustc >/dev/null 2>&1 || { echo "rustc not found: the containers get this machine's toolchain" >&2; exit 1; }
sysroot=$(rustc --print sysroot)
work=$(mktemp -d)
containers=()
cleanup() {
  local status=$?
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  stop_own_dockerd
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_docker
git ls-files -co --exclude-standard -z | tar --null -T - -cf "$work/tree.tar"

# What runs inside: the demo, the README's curl swap, Ctrl-C, then the tests.
cat >"$work/inside.sh" <<'INSIDE'
set -uo pipefail
mkdir -p /src && tar -xf /tree.tar -C /src && cd /src
t0=$SECONDS
# Job control: the demo gets its own process group that Ctrl-C (SIGINT to the group) can reach, as from a
# terminal (without it, a background job ignores SIGINT).
set -m
scripts/demo.sh >/tmp/demo.log 2>&1 &
demo=$!
set +m
until grep -q 'Shroud is running' /tmp/demo.log; do
  if ! kill -0 "$demo" 2>/dev/null || ((SECONDS - t0 > 3600)); then
    tail -n 60 /tmp/demo.log; echo "FRESH FAIL: scripts/demo.sh did not get to 'Shroud is running'"; exit 1
  fi
  sleep 2
done
echo ">> scripts/demo.sh running after $((SECONDS - t0)) s"
TOKEN=$(curl -s -u demo-client:demo-client-secret -d grant_type=client_credentials -d scope=read \
        http://127.0.0.1:9090/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
out=$(curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/hello)
case $out in
  *'"message":"hello demo-client"'*'"iss":"https://shroud.local"'*) echo "ok: the README's curl phantom swap: $out" ;;
  *) echo "FRESH FAIL: the README's curl phantom swap answered: $out"; exit 1 ;;
esac
kill -INT -- "-$demo"
for _ in $(seq 1 100); do kill -0 "$demo" 2>/dev/null || break; sleep 0.1; done
kill -0 "$demo" 2>/dev/null && { echo "FRESH FAIL: scripts/demo.sh did not stop on Ctrl-C"; exit 1; }
sleep 0.5
if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/9090) 2>/dev/null; then
  echo "FRESH FAIL: something still listens on :8080 or :9090 after Ctrl-C"; exit 1
fi
echo "ok: scripts/demo.sh stopped everything on Ctrl-C"
t0=$SECONDS
scripts/test.sh >/tmp/test.log 2>&1
status=$?
grep -E '^tests: |FAILED|panicked|^not ok|failed' /tmp/test.log | tail -n 30
echo ">> scripts/test.sh: status $status after $((SECONDS - t0)) s"
[[ $status == 0 ]] || { tail -n 80 /tmp/test.log; echo "FRESH FAIL: scripts/test.sh"; exit 1; }
echo "FRESH OK"
INSIDE

results=()
for suite in "${suites[@]}"; do
  image="shroud-fresh:$suite"
  docker image inspect "$image" >/dev/null 2>&1 ||
    docker import -c 'CMD ["bash"]' "$(debian_rootfs "$suite")" "$image" >/dev/null
  c="shroud-fresh-$suite-$$"
  containers+=("$c")
  echo ">> $suite: a pristine $(docker run --rm "$image" cat /etc/debian_version) with Rust $(rustc --version | cut -d' ' -f2) mounted read-only"
  t0=$SECONDS
  status=0
  # --shm-size: Chromium needs more than Docker's 64 MB default. NODE_EXTRA_CA_CERTS is passed on when this
  # machine sets it (a TLS-inspecting egress whose CA Node's own list lacks): the machine's, not the scripts'.
  docker run --name "$c" --shm-size=1g ${NODE_EXTRA_CA_CERTS:+-e NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt} -v "$sysroot:/opt/rust:ro" -v "$work/tree.tar:/tree.tar:ro" -v "$work/inside.sh:/inside.sh:ro" \
    -e PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -e CARGO_HOME=/root/.cargo \
    "$image" bash /inside.sh 2>&1 | tee "$work/$suite.log" | grep -E '^(>>|ok:|FRESH)' || true
  grep -q '^FRESH OK' "$work/$suite.log" || status=1
  mkdir -p artifacts/fresh-debian && cp "$work/$suite.log" "artifacts/fresh-debian/$suite.log"
  docker rm -f "$c" >/dev/null
  results+=("$suite: $([[ $status == 0 ]] && echo passed || echo FAILED) in $((SECONDS - t0)) s")
done
printf 'fresh Debian: %s\n' "${results[@]}"
! printf '%s\n' "${results[@]}" | grep -q FAILED
