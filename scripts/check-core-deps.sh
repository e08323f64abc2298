#!/usr/bin/env bash
# The protocol cores must stay free of I/O, clocks and thread RNGs so the
# deterministic simulator can drive them (ARCHITECTURE.md). This fails if
# `registers` or `consensus` gain a dependency on an I/O or runtime crate.
set -euo pipefail
cd "$(dirname "$0")/.."
banned='^(tokio|tonic|prost|rocksdb|librocksdb-sys|mio|hyper|rand|getrandom|std-time|chrono|socket2) '
for crate in registers consensus; do
  deps=$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}' | sort -u)
  if bad=$(echo "$deps" | grep -E "$banned"); then
    echo "error: $crate depends on I/O or runtime crates:"; echo "$bad"; exit 1
  fi
  echo "$crate: ok ($(echo "$deps" | wc -l) crates in its normal dependency tree)"
done
# No wall clock or thread RNG in the cores' sources either.
if grep -rnE 'SystemTime|Instant::now|thread_rng|rand::rng\(' registers/src consensus/src; then
  echo "error: clock or thread RNG in a protocol core"; exit 1
fi
