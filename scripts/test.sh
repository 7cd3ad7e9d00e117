#!/usr/bin/env bash
# Set everything up, then run the test suite (two workers). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -n 2 -p no:cacheprovider "$@"
