#!/usr/bin/env bash
# A linear layer's training step, elag (`elag bench layer`: its dense and sparse paths) against
# SparseProp and torch dense (bench/layer_vs_sparseprop.py), alternating runs so drift in
# machine load hits all alike (issue 12, Acceptance: >= 1.5x faster than SparseProp at 90%).
#
#   bench/layer_vs_sparseprop.sh [-r RUNS] [--threads T] [--shape OxI] [--batch N]
#                                [--sparsity LIST] [--repeats N]
#
# SparseProp lives in a venv under the build folder, never a dependency of elag:
#   /usr/bin/python3 -m venv --system-site-packages build/sparseprop-venv
#   build/sparseprop-venv/bin/pip install sparseprop
# VENV=path picks another venv, ELAG=path another binary (default build/elag).
# Prints every JSON row (elag's and the script's) on stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ELAG="${ELAG:-$ROOT/build/elag}"
VENV="${VENV:-$ROOT/build/sparseprop-venv}"
runs=3 threads=2 shape=2048x2048 batch=256 sparsity=0.9,0.95 repeats=10
while [ $# -gt 0 ]; do
    case "$1" in
    -r) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --shape) shape="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --sparsity) sparsity="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    *) echo "usage: see the head of $0" >&2; exit 2 ;;
    esac
done
[ -x "$ELAG" ] || { echo "no elag binary at $ELAG (set ELAG=)" >&2; exit 2; }
[ -x "$VENV/bin/python" ] || { echo "no venv at $VENV (see the head of $0)" >&2; exit 2; }
echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for _ in $(seq "$runs"); do
    "$ELAG" bench layer --shape "$shape" --batch "$batch" --sparsity "$sparsity" \
        --threads "$threads" --repeats "$repeats" --json
    "$VENV/bin/python" "$ROOT/bench/layer_vs_sparseprop.py" --shape "$shape" --batch "$batch" \
        --sparsity "$sparsity" --threads "$threads" --repeats "$repeats"
done
