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

# Installs Debian packages unconditionally (ensure_debs decides when that is needed).
install_debs() {
  echo ">> installing Debian packages: $*" >&2
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: $*" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
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

# What building Shroud needs on a fresh Debian (openssl-sys: headers and pkg-config).
ensure_build_deps() {
  command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; return 1; }
  ensure_debs pkg-config=pkg-config /usr/include/openssl/ssl.h=libssl-dev cc=gcc
}

# Node.js ≥ 20 and npm (oidc-provider 9 and playwright-core need 20; Debian 12's own nodejs is 18).
ensure_node() {
  ensure_debs node=nodejs npm=npm
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if (( major < 20 )); then
    echo "Node.js >= 20 is required (found $(node --version)): install Debian 13's nodejs or a NodeSource build" >&2
    return 1
  fi
}
