#!/usr/bin/env bash
# vendor/awc is the published awc crate plus one patch (vendor/awc.patch; why: vendor/awc/SHROUD-PATCH.md).
#
#   scripts/vendor-awc.sh              re-creates vendor/awc from the pristine crate + vendor/awc.patch
#   scripts/vendor-awc.sh --check      fails if vendor/awc differs from pristine + patch (run by .ci/run)
#   scripts/vendor-awc.sh --make-patch writes vendor/awc.patch from vendor/awc (after editing vendor/awc)
#
# The pristine crate is cargo's own download (its registry cache), checked against the checksum below; when
# the cache does not have it, cargo fetches it. "Pristine" here means the published crate less what Shroud
# never builds (its examples, tests, changelog and cargo's packaging files, listed in DROPPED); the patch
# trims the manifest to match. vendor/awc/SHROUD-PATCH.md is Shroud's own note, kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.11.0
SHA256=781f1d79630fba4f17edf409d32dafd8f85432e9574d3159e6c8e8dd1f750d20
DROPPED=(.cargo_vcs_info.json CHANGES.md Cargo.lock Cargo.toml.orig examples tests)
OURS=SHROUD-PATCH.md
PATCH=vendor/awc.patch

mode=${1:-apply}
case $mode in apply | --check | --make-patch) ;; *)
  echo "usage: $0 [--check | --make-patch]" >&2
  exit 2
  ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The published crate file, from cargo's registry cache or fetched by cargo into it.
crate_file() {
  local cache=${CARGO_HOME:-$HOME/.cargo}/registry/cache found
  found=$(ls "$cache"/*/awc-$VERSION.crate 2>/dev/null | head -n1 || true)
  if [[ -z $found ]]; then
    mkdir -p "$work/fetch/src"
    touch "$work/fetch/src/lib.rs"
    printf '[package]\nname = "awc-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nawc = { version = "=%s", default-features = false }\n' \
      "$VERSION" >"$work/fetch/Cargo.toml"
    cargo fetch -q --manifest-path "$work/fetch/Cargo.toml" >&2
    found=$(ls "$cache"/*/awc-$VERSION.crate | head -n1)
  fi
  echo "$found"
}

# The pristine crate, less what Shroud never builds, in $work/a.
pristine() {
  local crate
  crate=$(crate_file)
  echo "$SHA256  $crate" | sha256sum -c --quiet - || {
    echo "awc-$VERSION.crate: checksum mismatch" >&2
    exit 1
  }
  tar -xzf "$crate" -C "$work"
  mv "$work/awc-$VERSION" "$work/a"
  local path
  for path in "${DROPPED[@]}"; do rm -rf "${work:?}/a/$path"; done
}

pristine
case $mode in
--make-patch)
  cp -r vendor/awc "$work/b"
  rm -f "$work/b/$OURS"
  (cd "$work" && git diff --no-index --no-color --no-prefix --full-index a b) >"$PATCH" || [[ $? -eq 1 ]]
  echo "wrote $PATCH ($(grep -c '^diff --git' "$PATCH") files)"
  ;;
*)
  patch -s --batch -p1 -d "$work/a" --no-backup-if-mismatch <"$PATCH"
  if [[ $mode == --check ]]; then
    if ! diff -r -x "$OURS" "$work/a" vendor/awc; then
      echo "vendor/awc differs from awc $VERSION + $PATCH: run scripts/vendor-awc.sh (or --make-patch)" >&2
      exit 1
    fi
    [[ -f vendor/awc/$OURS ]] || {
      echo "vendor/awc/$OURS is missing" >&2
      exit 1
    }
    echo "vendor/awc: awc $VERSION + $PATCH: OK"
  else
    cp vendor/awc/$OURS "$work/a/$OURS"
    rm -rf vendor/awc
    cp -r "$work/a" vendor/awc
    echo "vendor/awc re-created from awc $VERSION + $PATCH"
  fi
  ;;
esac
