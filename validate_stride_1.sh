#!/usr/bin/env bash
# Validates the workspace: formatting, lints, alert rules, tests, loom. See `cargo xtask help`.
set -euo pipefail
cd "$(dirname "$0")"
exec cargo xtask validate "$@"
