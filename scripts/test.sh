#!/usr/bin/env bash
# The project's test command: installs what the build needs, then runs every
# test of the workspace with cargo-nextest (one build profile: dev).
#
# Two passes: first everything that does not measure real time, in
# parallel; then the WAN-emulation tests of geo-bench (calibration of
# emulated round trips, short benchmark runs), one at a time, because on a
# 2-core machine a parallel build or test starves the userspace delayer
# and the calibration rightly refuses the emulation (EVALUATION.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
timed='package(geo-bench) & kind(test)'
cargo nextest run --workspace --locked --profile ci -E "not ($timed)" "$@"
cargo nextest run --workspace --locked --profile ci -E "$timed" --test-threads 1 "$@"
