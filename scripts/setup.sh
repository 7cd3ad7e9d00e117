#!/usr/bin/env bash
# Set up .venv for paretochain: torch first (a CPU build on a machine without an NVIDIA GPU,
# the CUDA build where `nvidia-smi` sees one), then the package with its test extras.
# Re-running is cheap: what is installed stays.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

if ! python -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found, installing torch $TORCH_VERSION with CUDA"
    python -m pip install -q "torch==$TORCH_VERSION"
  else
    echo "setup: no GPU found, installing the CPU build of torch $TORCH_VERSION"
    python -m pip install -q "torch==$TORCH_VERSION" --extra-index-url "$TORCH_CPU_INDEX" --retries 1 --timeout 20
  fi
fi

if ! python -c "import paretochain, pytest, hypothesis, ray, optuna" >/dev/null 2>&1 || [ pyproject.toml -nt .venv/.paretochain-installed ]; then
  python -m pip install -q -e ".[dev,ray]"
  touch .venv/.paretochain-installed
fi
python -c "import torch, paretochain; print(f'setup: paretochain {paretochain.__version__}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}')"
