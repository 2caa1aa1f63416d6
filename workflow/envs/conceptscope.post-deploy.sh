#!/usr/bin/env bash
# Install the conceptscope library of this checkout into the rules' conda env.
set -euo pipefail
root=${CONCEPTSCOPE_ROOT:-$PWD}
if ! grep -qs 'name = "conceptscope"' "$root/pyproject.toml"; then
  echo "conceptscope post-deploy: $root is not the conceptscope repository;" \
       "run snakemake from the repository root or set CONCEPTSCOPE_ROOT" >&2
  exit 1
fi
python -m pip install --no-deps "$root"
