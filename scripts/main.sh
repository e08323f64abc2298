#!/usr/bin/env bash
# The project's main job: a local 3-region cluster of kv-server processes on
# loopback with data on disk, a short lat-a workload through the client SDK,
# per-region latency, and the kvctl commands to connect; then it exits.
# Flags are passed through to `kv-server dev` (try --help; --hold-secs N keeps
# the cluster up for the CLI).
#
# It builds the whole workspace (not just one package) so that the build is
# shared with the tests: a per-package build resolves features differently
# and would compile RocksDB's C++ a second time (../shared/docs/BUILD.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
cargo build --workspace --locked --bins
exec target/debug/kv-server dev "$@"
