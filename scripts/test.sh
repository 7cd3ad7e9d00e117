#!/usr/bin/env bash
# Set everything up, then run the test suite (two workers). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the report test opens report.html in headless Chromium: Debian's package, installed when we may
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing Debian's chromium for the report rendering test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "test: chromium could not be installed; that test will be skipped"
fi
# the C++ example test builds examples/cpp against the torch wheel's libtorch: CMake and a compiler
if { ! command -v cmake >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing cmake and g++ for the C++ example test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null) || echo "test: cmake/g++ could not be installed; that test will be skipped"
fi
exec .venv/bin/python -m pytest -q -n 2 -p no:cacheprovider "$@"
