#!/usr/bin/env bash
# Set everything up, then run the main job on the embedded default: train a small
# multi-objective policy on the default Warehouse config, evaluate it against the
# baselines, export it, and print where the report is. Extra arguments go to
# `paretochain demo` (for example --full for the documented full budget).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/paretochain demo "$@"
