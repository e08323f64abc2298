#!/usr/bin/env bash
# The project's main job. Until the server lands (issue 4) it is the shared-log
# benchmark: fsync on this disk, then group-commit throughput and latency
# against raw RocksDB. Flags are passed through to log-bench (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
cargo run --locked --bin log-bench -- "$@"
