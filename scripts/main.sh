#!/usr/bin/env bash
# The project's main job. Until the server lands (issue 4) it is the shared-log
# benchmark: fsync on this disk, then group-commit throughput and latency
# against raw RocksDB. Flags are passed through to log-bench (try --help).
#
# It builds the whole workspace (not just one package) so that the build is
# shared with the tests: a per-package build resolves features differently
# and would compile RocksDB's C++ a second time (../shared/docs/BUILD.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
cargo build --workspace --locked --bins
exec target/debug/log-bench "$@"
