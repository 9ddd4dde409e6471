#!/usr/bin/env bash
# Regenerates the C bindings of wit/capsule.wit in this folder with wit-bindgen 0.61 (no
# object file: capsule-componentize records the world from the WIT itself) and
# records the WIT's sha256 in their first line (`cargo xtask test` checks it).
# Usage: bash guest-sdk/c/bindings/regenerate.sh   (from anywhere; installs wit-bindgen-cli
# into target/tools/wit-bindgen the first time, which takes a few minutes)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
wit="$root/wit/capsule.wit"
tools="$root/target/tools/wit-bindgen"
if ! "$tools/bin/wit-bindgen" --version 2>/dev/null | grep -q '^wit-bindgen-cli 0\.61\.'; then
  cargo install wit-bindgen-cli --version '0.61.*' --locked --root "$tools"
fi
"$tools/bin/wit-bindgen" c "$wit" --no-object-file --out-dir "$here"
sum="$(sha256sum "$wit" | cut -d' ' -f1)"
for f in plugin.h plugin.c; do
  { echo "// wit/capsule.wit sha256: $sum (regenerate: bash guest-sdk/c/bindings/regenerate.sh)"
    cat "$here/$f"; } > "$here/$f.tmp"
  mv "$here/$f.tmp" "$here/$f"
done
echo "bindings regenerated for wit/capsule.wit $sum"
