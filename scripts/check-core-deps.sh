#!/usr/bin/env bash
# The protocol cores must stay free of I/O, clocks and thread RNGs so the
# deterministic simulator can drive them (ARCHITECTURE.md). This fails if
# `registers`, `consensus` or `replica` depend directly on an I/O, runtime
# or randomness crate, or if their sources read a clock or a thread RNG.
#
# Indirect dependencies are checked against the same list except `rand`
# and `getrandom`: tikv raft-rs (under `consensus`) links rand for its
# randomised election timeout. We configure raft so that range holds one
# value (see consensus/src/raft), which keeps it deterministic.
set -euo pipefail
cd "$(dirname "$0")/.."
io='tokio|tonic|prost|rocksdb|librocksdb-sys|mio|hyper|socket2|chrono'
for crate in registers consensus replica; do
  direct=$(cargo tree --locked -p "$crate" -e normal --depth 1 --prefix none --format '{p}' | tail -n +2 | sort -u)
  if bad=$(echo "$direct" | grep -E "^($io|rand|rand_core|getrandom) "); then
    echo "error: $crate depends directly on I/O or randomness crates:"; echo "$bad"; exit 1
  fi
  all=$(cargo tree --locked -p "$crate" -e normal --prefix none --format '{p}' | sort -u)
  if bad=$(echo "$all" | grep -E "^($io) "); then
    echo "error: $crate pulls in I/O crates:"; echo "$bad"; exit 1
  fi
  echo "$crate: ok ($(echo "$all" | wc -l) crates in its normal dependency tree)"
done
# No wall clock or thread RNG in the cores' own sources either.
if grep -rnE 'SystemTime|Instant::now|thread_rng|rand::rng\(' registers/src consensus/src replica/src; then
  echo "error: clock or thread RNG in a protocol core"; exit 1
fi
