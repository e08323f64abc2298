#!/usr/bin/env bash
# The project's test command: installs what the build needs, then runs every
# test of the workspace with cargo-nextest (one build profile: dev).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
cargo nextest run --workspace --locked --profile ci "$@"
