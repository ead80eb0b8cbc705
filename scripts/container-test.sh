#!/usr/bin/env bash
# The container test (run by CI): builds the image of the unchanged Dockerfile and proves it, then brings
# up docker-compose.yml and proves the demo through it.
#   image:   runs as uid 10001; HEALTHCHECK turns healthy; configuration from a mounted file plus SHROUD__*
#            overrides; `keygen` and `check-config`; SIGTERM stops it cleanly within the drain timeout; a
#            phantom swap through the container against the dev IdP.
#   compose: `docker compose up` of docker-compose.yml; the README's curl phantom swap; the example SPA's
#            login, API call and logout in headless Chromium; `down` leaves no container, network or volume.
# It installs docker.io when missing and uses the Docker engine that answers, or starts its own (own data
# root and socket under $SHROUD_CONTAINER_CACHE, stopped at the end). Base images that no registry serves
# get local stand-ins (scripts/lib/containers.sh), cached with the engine's data for fast reruns.
# Usage: scripts/container-test.sh [image|compose]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
source scripts/lib/containers.sh
parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(image compose)
IMAGE=${SHROUD_IMAGE:-shroud:test}
started=$SECONDS

work=$(mktemp -d)
containers=()
cleanup() {
  local status=$?
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  [[ -n ${compose_up:-} ]] && compose down --volumes --remove-orphans >/dev/null 2>&1
  [[ -n ${idp_pid:-} ]] && kill "$idp_pid" 2>/dev/null && wait "$idp_pid" 2>/dev/null
  stop_own_dockerd
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# Polls CMD until it succeeds (status 0) or SECONDS_ elapse (status 1). Usage: wait_for SECONDS_ CMD...
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

ensure_debs curl=curl
ensure_docker
ensure_image debian:bookworm-slim standin_debian bookworm-slim-2
ensure_image rust:1-bookworm standin_rust "$(rustc --version | cut -d' ' -f2)"

echo ">> docker build -t $IMAGE . (the repository's Dockerfile, unchanged)"
build_started=$SECONDS
# The build stage is tagged too, so that it stays as the next run's cache while what earlier builds left
# untagged (their build stages, 2 GB each) is pruned.
docker build --network host --target build -t "$IMAGE-build-stage" . >"$work/build.log" 2>&1 &&
  docker build --network host -t "$IMAGE" . >>"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "docker build"; }
docker image prune -f >/dev/null
echo ">> built in $((SECONDS - build_started)) s; image size $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1 / 1e6}')"

# The README's one-time step: config/keys/phantom-es256.pem, readable by the container's user 10001.
repo_signing_key() {
  local key=config/keys/phantom-es256.pem
  if [[ ! -f $key ]]; then
    docker run --rm "$IMAGE" keygen --phantom-key es256 >"$key"
    echo ">> created $key"
  fi
  (( 8#$(stat -c %a "$key") & 4 )) ||
    fail "$key is not readable by the container's user 10001 (mode $(stat -c %a "$key")): chmod 644 it (a demo key)"
}

# A free TCP port on 127.0.0.1 (nothing answers there).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# Succeeds when the container's HEALTHCHECK status is healthy.
is_healthy() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$1") == healthy ]]; }

# The dev IdP's client_credentials token for demo-client (opaque).
opaque_token() {
  curl -fsS -u demo-client:demo-client-secret -d grant_type=client_credentials -d scope=read \
    "http://127.0.0.1:$1/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/'
}

test_image() {
  echo ">> image: $IMAGE"
  local uid out conf="$work/conf" idp_port api_port port c started_ms ready_ms
  # keygen: a 64-hex key, and the phantom signing key that the served configuration below uses.
  out=$(docker run --rm "$IMAGE" keygen)
  [[ $out =~ ^[0-9a-f]{64}$ ]] || fail "keygen printed '$out', want 64 hex characters"
  mkdir -p "$conf/keys"
  docker run --rm "$IMAGE" keygen --phantom-key es256 >"$conf/keys/phantom.pem"
  grep -q 'BEGIN PRIVATE KEY' "$conf/keys/phantom.pem" || fail "keygen --phantom-key es256 printed no PKCS#8 key"
  pass "keygen and keygen --phantom-key es256"

  idp_port=$(free_port)
  api_port=$(free_port)
  port=$(free_port)
  # The mounted file names no secret; the client secret and two keys come from SHROUD__* variables.
  cat >"$conf/shroud.toml" <<TOML
[server]
listen = "127.0.0.1:1"
[issuer]
url = "http://127.0.0.1:$idp_port"
[introspection]
client_id = "gateway"
[phantom]
issuer = "https://shroud.local"
signing_key_file = "/etc/shroud/keys/phantom.pem"
[[routes]]
path_prefix = "/api"
upstream = "http://127.0.0.1:$api_port"
credentials = "bearer"
required_scopes = ["read"]
TOML
  chmod -R a+rX "$conf"
  local env=(-e SHROUD__INTROSPECTION__CLIENT_SECRET=gateway-secret -e SHROUD__PHANTOM__ISSUER=https://container.test
             -e "SHROUD__SERVER__LISTEN=127.0.0.1:$port")
  local mount=(-v "$conf:/etc/shroud:ro")

  # check-config: the mounted file plus the overrides, secret redacted; a bad override exits 2 naming the key.
  out=$(docker run --rm "${mount[@]}" "${env[@]}" "$IMAGE" check-config)
  grep -qx 'issuer = "https://container.test"' <<<"$out" || fail "check-config: SHROUD__PHANTOM__ISSUER not applied"
  grep -qx "listen = \"127.0.0.1:$port\"" <<<"$out" || fail "check-config: SHROUD__SERVER__LISTEN not applied"
  grep -qx 'client_secret = "\*\*\*redacted\*\*\*"' <<<"$out" || fail "check-config: client_secret not redacted"
  grep -q 'gateway-secret' <<<"$out" && fail "check-config printed the client secret"
  local rc=0
  out=$(docker run --rm "${mount[@]}" "${env[@]}" -e SHROUD__SERVER__LISTEN=bogus "$IMAGE" check-config 2>&1) || rc=$?
  [[ $rc == 2 && $out == *'`server.listen`'* ]] || fail "check-config with a bad override: status $rc, '$out'"
  pass "check-config: mounted file + SHROUD__* overrides, secret redacted, a bad key exits 2 naming it"
  # The README's docker run: the repository's config/ mounted, its shroud.toml with the key's path in the image.
  repo_signing_key
  docker run --rm -v "$PWD/config:/etc/shroud:ro" -e SHROUD__INTROSPECTION__CLIENT_SECRET=x \
    -e SHROUD__PHANTOM__SIGNING_KEY_FILE=/etc/shroud/keys/phantom-es256.pem "$IMAGE" check-config >/dev/null ||
    fail "check-config of the README's docker run (config/shroud.toml mounted)"
  pass "check-config of the README's docker run (config/ mounted at /etc/shroud)"

  # The dev IdP and the demo API on the host; Shroud in the container on the host's network.
  ensure_node
  npm ci --prefix scripts/dev-idp --no-audit --no-fund --loglevel=error
  DEV_IDP_PORT=$idp_port node scripts/dev-idp/index.js >"$work/idp.log" 2>&1 &
  idp_pid=$!
  node scripts/demo-api/server.mjs "$api_port" >"$work/api.log" 2>&1 &
  api_pid=$!
  wait_for 30 curl -fsS "http://127.0.0.1:$idp_port/.well-known/openid-configuration" || fail "dev IdP on :$idp_port: not within 30 s"
  wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$api_port" || fail "demo API on :$api_port: not within 30 s"

  c=shroud-test-$$
  started_ms=$(date +%s%3N)
  docker run -d --name "$c" --network host "${mount[@]}" "${env[@]}" "$IMAGE" >/dev/null
  containers+=("$c")
  wait_for 10 curl -fsS "http://127.0.0.1:$port/healthz" || fail "/healthz of the container: not within 10 s"
  ready_ms=$(($(date +%s%3N) - started_ms))
  wait_for 30 curl -fsS "http://127.0.0.1:$port/readyz" || fail "/readyz of the container: not within 30 s"
  echo ">> docker run to /healthz answering: $ready_ms ms; to /readyz: $(($(date +%s%3N) - started_ms)) ms"

  uid=$(docker exec "$c" sh -c 'id -u; awk "/^Uid:/ { print \$2 }" /proc/1/status' | sort -u)
  [[ $uid == 10001 ]] || fail "the container runs as uid '$uid', want 10001"
  pass "runs as the non-root uid 10001 (PID 1 too)"

  # The image's own HEALTHCHECK (interval 10 s): healthy at its first check.
  wait_for 40 is_healthy "$c" || fail "HEALTHCHECK healthy: not within 40 s"
  echo ">> HEALTHCHECK healthy $(($(date +%s%3N) - started_ms)) ms after docker run (first check after its 10 s interval)"
  pass "HEALTHCHECK turns healthy"

  # The phantom swap through the container: an opaque token in, the demo API sees Shroud's JWT.
  local token
  token=$(opaque_token "$idp_port")
  [[ -n $token && $token != *.*.* ]] || fail "the dev IdP gave no opaque token: '$token'"
  out=$(curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/hello")
  [[ $out == *'"iss":"https://container.test"'* && $out != *"$token"* ]] ||
    fail "phantom swap: the demo API answered '$out'"
  [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer not-a-token" "http://127.0.0.1:$port/api/hello") == 401 ]] ||
    fail "an unknown token was not refused with 401"
  pass "phantom swap through the container (opaque token in, JWT with iss https://container.test upstream; a bad token 401)"

  # SIGTERM: the process stops cleanly (status 0) within the drain timeout (5 s).
  local t0
  t0=$(date +%s%3N)
  docker kill --signal TERM "$c" >/dev/null
  rc=$(timeout 10 docker wait "$c") || fail "the container did not stop within 10 s of SIGTERM"
  local stop_ms=$(($(date +%s%3N) - t0))
  [[ $rc == 0 ]] || fail "after SIGTERM the container exited with $rc"
  ((stop_ms <= 6000)) || fail "SIGTERM took $stop_ms ms, more than the 5 s drain timeout"
  docker logs "$c" 2>&1 | grep -q 'shutting down' || fail "no 'shutting down' log line after SIGTERM"
  docker logs "$c" 2>&1 | grep -q 'gateway-secret\|BEGIN PRIVATE' && fail "a secret is in the container's log"
  pass "SIGTERM: exit 0 after $stop_ms ms (drain timeout 5 s), 'shutting down' logged, no secret in the log"
  docker rm "$c" >/dev/null
  kill "$idp_pid" "$api_pid" 2>/dev/null || true
  wait "$idp_pid" "$api_pid" 2>/dev/null || true
  idp_pid=""

  echo ">> image size: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1 / 1e6}')"
}

# docker compose: the plugin when the docker CLI has it, else Debian's docker-compose.
COMPOSE_PROJECT=shroud-compose-test
compose() {
  if docker compose version >/dev/null 2>&1; then docker compose -p "$COMPOSE_PROJECT" -f docker-compose.yml "$@"
  else docker-compose -p "$COMPOSE_PROJECT" -f docker-compose.yml "$@"; fi
}

# What the compose project left in the engine: containers, networks and volumes with its label.
compose_leftovers() {
  local label="label=com.docker.compose.project=$COMPOSE_PROJECT"
  { docker ps -aq --filter "$label"; docker network ls -q --filter "$label"; docker volume ls -q --filter "$label"; } | sort -u
}

test_compose() {
  echo ">> compose: docker-compose.yml"
  docker compose version >/dev/null 2>&1 || ensure_debs docker-compose=docker-compose
  ensure_image redis:7-bookworm standin_redis debian-bookworm-redis
  ensure_image node:20-bookworm-slim standin_node "$NODE_PINNED_VERSION-2"
  ensure_ports_free shroud=8080 dev-idp=9090 demo-api=7001 redis=6380
  repo_signing_key
  [[ -z $(compose_leftovers) ]] || fail "a previous $COMPOSE_PROJECT project is still there: $(compose_leftovers | tr '\n' ' ')"

  local t0=$SECONDS
  compose_up=1
  compose build >"$work/compose-build.log" 2>&1 || { tail -n 40 "$work/compose-build.log" >&2; fail "compose build"; }
  compose up -d >"$work/compose-up.log" 2>&1 || { cat "$work/compose-up.log" >&2; fail "compose up"; }
  wait_for 60 curl -fsS http://127.0.0.1:8080/readyz ||
    { compose logs --no-color | tail -n 40 >&2; fail "compose: not ready"; }
  echo ">> compose build + up to ready: $((SECONDS - t0)) s"
  for service in redis dev-idp demo-api shroud; do
    [[ $(docker inspect -f '{{.State.Running}}' "$(compose ps -q "$service")") == true ]] || fail "compose: $service is not running"
  done
  docker exec "$(compose ps -q redis)" redis-cli -p 6380 ping | grep -qx PONG || fail "compose: redis does not answer"

  # The README's curl phantom swap.
  local token out
  token=$(opaque_token 9090)
  [[ -n $token && $token != *.*.* ]] || fail "compose: the dev IdP gave no opaque token: '$token'"
  out=$(curl -fsS -H "Authorization: Bearer $token" http://127.0.0.1:8080/api/hello)
  [[ $out == *'"message":"hello demo-client"'* && $out == *'"iss":"https://shroud.local"'* && $out != *"$token"* ]] ||
    fail "compose: the README's phantom swap answered '$out'"
  pass "compose: the README's curl phantom swap (hello demo-client, iss https://shroud.local)"
  # Shroud uses the Redis tier of config/demo-compose.env.
  docker exec "$(compose ps -q redis)" redis-cli -p 6380 --scan | grep -q . ||
    fail "compose: nothing was cached in Redis (SHROUD__CACHE__BACKEND=redis)"
  pass "compose: Shroud cached the introspection in Redis"

  # The example SPA in headless Chromium: login, API call, logout.
  ensure_node
  ensure_debs /usr/bin/chromium=chromium
  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
  node tests/e2e/compose-spa.mjs http://127.0.0.1:8080 || { compose logs --no-color | tail -n 40 >&2; fail "compose: the SPA in Chromium"; }

  compose down --volumes --remove-orphans >"$work/compose-down.log" 2>&1 || { cat "$work/compose-down.log" >&2; fail "compose down"; }
  compose_up=""
  [[ -z $(compose_leftovers) ]] || fail "compose down left: $(compose_leftovers | tr '\n' ' ')"
  pass "compose down leaves no container, network or volume"
}

for part in "${parts[@]}"; do
  case $part in
    image) test_image ;;
    compose) test_compose ;;
    *) fail "unknown part '$part' (image or compose)" ;;
  esac
done
echo "container test: OK in $((SECONDS - started)) s"
