#!/usr/bin/env bash
# Sets up everything reswise needs on a fresh machine: Debian's Fashion-MNIST files (the offline
# data of the default study; skipped where there is no apt-get or no root) and a virtual
# environment in .venv with the pinned dependencies and the project itself (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
  if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist; then
    echo "Installed Debian's dataset-fashion-mnist."
  else
    echo "warning: could not install dataset-fashion-mnist; Fashion-MNIST will come from TFDS (needs internet)." >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q -e ".[dev,hub]"
echo "Set up. Run the tests with: .venv/bin/python -m pytest"
