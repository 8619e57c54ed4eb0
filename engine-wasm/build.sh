#!/usr/bin/env bash
# Builds the engine for the browser and for Node:
#   pkg/web   ES module for browsers and bundlers (import init, { BookMirror } from ...)
#   pkg/node  CommonJS for Node (tests, server-side tools)
# with wasm-bindgen-cli pinned to the wasm-bindgen crate's version (installed when missing) and
# wasm-opt -Oz when `npm install` has put binaryen's wasm-opt in node_modules.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd .. && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$root/Cargo.lock")"
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
  echo "installing wasm-bindgen-cli $version"
  cargo install wasm-bindgen-cli --version "$version"
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

# Size over speed for the download, without touching the workspace's release profile.
CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
CARGO_PROFILE_RELEASE_DEBUG=0 \
CARGO_PROFILE_RELEASE_PANIC=abort \
  cargo build -q -p engine-wasm --lib --target wasm32-unknown-unknown --release
wasm="$target_dir/wasm32-unknown-unknown/release/engine_wasm.wasm"

rm -rf pkg
wasm-bindgen --target web --out-dir pkg/web "$wasm"
wasm-bindgen --target nodejs --out-dir pkg/node "$wasm"

wasm_opt="node_modules/.bin/wasm-opt"
if [ -x "$wasm_opt" ]; then
  for out in pkg/web/engine_wasm_bg.wasm pkg/node/engine_wasm_bg.wasm; do
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals "$out" -o "$out.opt"
    mv "$out.opt" "$out"
  done
else
  echo "wasm-opt not found (npm install in engine-wasm/ provides it): skipping optimisation"
fi
bytes="$(wc -c < pkg/web/engine_wasm_bg.wasm)"
gzipped="$(gzip -9 -c pkg/web/engine_wasm_bg.wasm | wc -c)"
echo "engine_wasm_bg.wasm: $bytes bytes, $gzipped gzipped"
