#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after the other, growing fuzz/corpus/.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain build them.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in analyzer session frames startup; do
  mkdir -p "corpus/$t" artifacts
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4096 2>&1 | tee "artifacts/$t.log" | grep -E "^#|Done|ERROR|panicked" | tail -3
done
