#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: a virtual environment (.venv, or $VENV) with the matched torch pair,
# this project with its dev, export, reports and demo extras, Debian's Fashion-MNIST (the default offline data set)
# and Debian's chromium (the demo page's browser test drives it through Playwright; `playwright install` is never run).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
PIP="$VENV/bin/pip"

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# torch 2.14.1 and torchvision 0.29.1 together: other combinations offered here break transformers' imports
if ! "$VENV/bin/python" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '2.14.1')" 2>/dev/null; then
    "$PIP" install --quiet --upgrade pip
    "$PIP" install --quiet torch==2.14.1 torchvision==0.29.1
fi
"$PIP" install --quiet -e ".[dev,export,reports,demo]"

PACKAGES=()
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || PACKAGES+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || PACKAGES+=(chromium)
if [ ${#PACKAGES[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q "${PACKAGES[@]}"
fi
