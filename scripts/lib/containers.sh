#!/usr/bin/env bash
# Shared helpers of the container tests (scripts/container-test.sh, scripts/fresh-debian-test.sh):
# a Docker engine (the one that answers, or one of our own), and local stand-ins of the public base images
# made with debootstrap when no registry serves them. Source scripts/lib/deps.sh first.
#
# Environment:
#   SHROUD_CONTAINER_CACHE  where rootfs tarballs and our own engine's data live
#                           (default /var/cache/shroud-containers; kept across runs so reruns are fast)
#   DEBIAN_MIRROR           the Debian mirror of debootstrap (default http://deb.debian.org/debian)

CONTAINER_CACHE=${SHROUD_CONTAINER_CACHE:-/var/cache/shroud-containers}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
OWN_DOCKERD_PID=""

# Runs a command as root (directly or through sudo).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# A Docker engine that answers: the configured one (DOCKER_HOST or the default socket), or our own dockerd
# with its own data root and socket under $CONTAINER_CACHE (stop it with stop_own_dockerd).
ensure_docker() {
  ensure_debs docker=docker.io dockerd=docker.io
  if docker info >/dev/null 2>&1; then
    echo ">> using the Docker engine at ${DOCKER_HOST:-the default socket}" >&2
    return 0
  fi
  local root="$CONTAINER_CACHE/docker" sock
  sock="$root/docker.sock"
  as_root mkdir -p "$root"
  # One run at a time uses our own engine (another run would stop it under us): wait for its lock.
  exec {DOCKERD_LOCK_FD}>>"$root/lock"
  if ! flock -n "$DOCKERD_LOCK_FD"; then
    echo ">> waiting for another run that uses our own dockerd ($root/lock)" >&2
    flock -w 7200 "$DOCKERD_LOCK_FD" || { echo "the other run did not end within 2 h" >&2; return 1; }
  fi
  if DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; then
    # Ours, left running by an interrupted run: adopt it (and stop it at the end).
    export DOCKER_HOST="unix://$sock"
    OWN_DOCKERD_PID=$(cat "$root/dockerd.pid")
    echo ">> using our own dockerd left running by an earlier run (socket $sock)" >&2
    return 0
  fi
  as_root mkdir -p "$root/data" "$root/exec"
  echo ">> starting our own dockerd (data root $root/data, socket $sock)" >&2
  as_root dockerd --data-root "$root/data" --exec-root "$root/exec" -H "unix://$sock" \
    --pidfile "$root/dockerd.pid" >"$root/dockerd.log" 2>&1 {DOCKERD_LOCK_FD}>&- &
  OWN_DOCKERD_PID=$!
  export DOCKER_HOST="unix://$sock"
  local deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$OWN_DOCKERD_PID" 2>/dev/null || ((SECONDS > deadline)); then
      echo "dockerd did not start; its log ($root/dockerd.log):" >&2
      tail -n 20 "$root/dockerd.log" >&2
      return 1
    fi
    sleep 0.5
  done
  # $! is the shell that runs as_root; the daemon's own pid is in its pidfile.
  OWN_DOCKERD_PID=$(as_root cat "$root/dockerd.pid")
}

# Stops the dockerd that ensure_docker started (and waits until it is gone); no-op otherwise.
stop_own_dockerd() {
  [[ -n $OWN_DOCKERD_PID ]] || return 0
  as_root kill -TERM "$OWN_DOCKERD_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$OWN_DOCKERD_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  if kill -0 "$OWN_DOCKERD_PID" 2>/dev/null; then
    echo "dockerd did not stop within 60 s: killing it" >&2
    as_root kill -KILL "$OWN_DOCKERD_PID" 2>/dev/null || true
  fi
  OWN_DOCKERD_PID=""
}

# Prints the path of a cached tarball of a minimal Debian root filesystem (debootstrap minbase) of SUITE,
# with this machine's CA bundle (its egress may inspect TLS).
debian_rootfs() {
  local suite=$1 tarball="$CONTAINER_CACHE/rootfs/$1-minbase.tar"
  if [[ ! -s $tarball ]]; then
    ensure_debs debootstrap=debootstrap
    local dir="$CONTAINER_CACHE/rootfs/$suite.tmp"
    as_root rm -rf "$dir"
    as_root mkdir -p "$dir"
    echo ">> debootstrap --variant=minbase $suite (cached in $tarball)" >&2
    as_root debootstrap --variant=minbase --include=ca-certificates "$suite" "$dir" "$DEBIAN_MIRROR" >&2
    # The CAs this machine trusts (e.g. a TLS-inspecting egress) go into the base, never the Dockerfiles.
    as_root cp -a /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/"
    as_root chroot "$dir" update-ca-certificates >/dev/null
    as_root rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    as_root tar -C "$dir" -cf "$tarball.part" .
    as_root mv "$tarball.part" "$tarball"
    as_root rm -rf "$dir"
  fi
  echo "$tarball"
}

# Makes IMAGE available: already in the engine, else pulled, else a local stand-in built by the function
# named STANDIN (no registry reachable). A stand-in carries the label shroud.standin=<VERSION>, and is
# rebuilt when that version changes (e.g. the host's Rust toolchain).
# Usage: ensure_image IMAGE STANDIN VERSION
ensure_image() {
  local image=$1 standin=$2 version=$3 have
  if have=$(docker image inspect -f '{{ index .Config.Labels "shroud.standin" }}' "$image" 2>/dev/null); then
    [[ -z $have || $have == "<no value>" || $have == "$version" ]] && return 0
    echo ">> stand-in $image is out of date ($have, want $version)" >&2
  elif timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
    return 0
  fi
  echo ">> making a local stand-in of $image" >&2
  "$standin" "$image" "$version"
}

# Stand-in of debian:<suite>-slim: the debootstrap rootfs with what the official slim images add
# (debuerreotype): no docs, man pages or locales, and apt that keeps no caches in image layers.
standin_debian() {
  local image=$1 suite=${1#debian:} dir
  suite=${suite%-slim}
  dir=$(mktemp -d)
  as_root tar -xf "$(debian_rootfs "$suite")" -C "$dir"
  as_root tee "$dir/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
  as_root tee "$dir/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::Languages "none";' | as_root tee "$dir/etc/apt/apt.conf.d/docker-no-languages" >/dev/null
  echo 'APT::AutoRemove::SuggestsImportant "false";' | as_root tee "$dir/etc/apt/apt.conf.d/docker-autoremove-suggests" >/dev/null
  as_root find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  as_root rm -rf "$dir"/usr/share/{groff,info,linda,lintian,locale,man}/*
  as_root tar -C "$dir" -c . | docker import -c 'CMD ["bash"]' -c "LABEL shroud.standin=$2" - "$image" >/dev/null
  as_root rm -rf "$dir"
}

# Stand-in of rust:1-bookworm: Debian plus what buildpack-deps has for building, plus the host's Rust
# toolchain (its sysroot, without the docs) under /usr/local/rustup, as the official image lays it out.
standin_rust() {
  local image=$1 sysroot ctx
  ensure_image debian:bookworm-slim standin_debian bookworm-slim-2
  sysroot=$(rustc --print sysroot)
  ctx=$(mktemp -d)
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev make pkg-config libssl-dev git curl \\
    && rm -rf /var/lib/apt/lists/*
COPY bin /usr/local/rustup/toolchains/host/bin
COPY lib /usr/local/rustup/toolchains/host/lib
COPY libexec /usr/local/rustup/toolchains/host/libexec
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/rustup/toolchains/host/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL shroud.standin=$2
DOCKERFILE
  tar -c -C "$ctx" Dockerfile -C "$sysroot" bin lib libexec | docker build -q --network host -t "$image" - >/dev/null
  rm -rf "$ctx"
}

# Stand-in of redis:7-bookworm: Debian 12's redis-server (7.0).
standin_redis() {
  ensure_image debian:bookworm-slim standin_debian bookworm-slim-2
  docker build -q --network host -t "$1" - >/dev/null <<DOCKERFILE
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*
LABEL shroud.standin=$2
CMD ["redis-server"]
DOCKERFILE
}

# Stand-in of node:20-bookworm-slim: Debian plus the project's pinned Node.js and npm (scripts/lib/deps.sh),
# with the official image's user node (uid 1000), trusting the system CA bundle (this machine's egress).
standin_node() {
  ensure_image debian:bookworm-slim standin_debian bookworm-slim-2
  local dir ctx
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cache/node-v$NODE_PINNED_VERSION"
  [[ -x $dir/bin/node ]] || fetch_node "$dir"
  ctx=$(mktemp -d)
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM debian:bookworm-slim
COPY node /usr/local/
# Node keeps its own CA list: point it at the system bundle, which holds this machine's CAs.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
RUN useradd --uid 1000 --create-home --shell /bin/bash node
LABEL shroud.standin=$2
CMD ["node"]
DOCKERFILE
  tar -c -C "$ctx" Dockerfile -C "$dir/.." --transform "s,^node-v$NODE_PINNED_VERSION,node," \
    "node-v$NODE_PINNED_VERSION" | docker build -q --network host -t "$1" - >/dev/null
  rm -rf "$ctx"
}
