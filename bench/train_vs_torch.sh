#!/usr/bin/env bash
# Training throughput, elag vs PyTorch, side by side in one run (issue 2, Acceptance "Benchmark").
#
# Both sides train LeNet-300-100 on Fashion-MNIST with SGD-momentum under the same gradual
# magnitude pruning schedule (configs/fashion_mlp_gmp.yaml; bench/torch_train.py is its PyTorch
# twin) on the CPU with the same thread count, data held in memory. Runs alternate
# elag, torch, elag, torch, ... so drift in machine load hits both alike. Prints medians, the
# ratio elag/pytorch in samples/s and the mask-update share of training time, and writes every
# raw row plus the medians and machine info to bench/results/train_vs_torch.json.
#
#   bench/train_vs_torch.sh [-r REPEATS] [--epochs N] [--threads T] [--train-limit N]
#
# PyTorch comes from Debian's python3-torch, so the system interpreter (/usr/bin/python3) runs
# it and parses the JSON here; a python3 earlier on PATH may lack torch and numpy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3
ELAG="$ROOT/build/elag"
CONFIG="$ROOT/configs/fashion_mlp_gmp.yaml"
RESULTS="$ROOT/bench/results/train_vs_torch.json"

command="bench/train_vs_torch.sh${*:+ $*}"
repeats=3
epochs=""
threads=2
train_limit=""

usage() {
    cat <<'EOF'
usage: bench/train_vs_torch.sh [-r REPEATS] [--epochs N] [--threads T] [--train-limit N]
  -r N            repeats of each side (default 3); medians are reported
  --epochs N      epochs for both (default: the config's, 10)
  --threads T     threads for both (default 2)
  --train-limit N first N training examples, for a quick try (default: all 60000)
EOF
}

die() { echo "train_vs_torch: $*" >&2; exit 2; }
posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, got '$2'"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        -r|--repeats) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; repeats=$2; shift 2 ;;
        --epochs) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; epochs=$2; shift 2 ;;
        --threads) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; threads=$2; shift 2 ;;
        --train-limit) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; train_limit=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

[[ -x "$PY" ]] || die "$PY not found (apt-get install python3-torch python3-numpy)"
"$PY" -c 'import torch, numpy' 2>/dev/null || die "$PY cannot import torch and numpy (apt-get install python3-torch)"
[[ -f "$CONFIG" ]] || die "$CONFIG not found"

if [[ ! -x "$ELAG" ]]; then
    echo "train_vs_torch: building $ELAG" >&2
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DELAG_TESTS=OFF -DELAG_CUDA=OFF >/dev/null
    cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
fi

elag_args=(--set "train.threads=$threads")
torch_args=(--threads "$threads")
if [[ -n "$epochs" ]]; then
    elag_args+=(--set "train.epochs=$epochs")
    torch_args+=(--epochs "$epochs")
fi
if [[ -n "$train_limit" ]]; then
    elag_args+=(--set "data.train_limit=$train_limit")
    torch_args+=(--train-limit "$train_limit")
fi

# Both sides use every core they are given; anything else running skews the ratio.
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${load_start%% *}" 'BEGIN { exit !(l > 0.5) }'; then
    echo "train_vs_torch: warning: load average $load_start before starting; the figures will be noisy" >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/train_vs_torch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.jsonl"
: >"$rows"

# One JSON row per run; elag's figures come from its summary.json.
elag_row='
import json, sys
s = json.load(open(sys.argv[1]))
keys = ["epochs", "steps", "train_seconds", "samples_per_second", "mask_update_seconds",
        "test_accuracy", "sparsity"]
row = {"framework": "elag", "run": int(sys.argv[2]), "threads": int(sys.argv[3])}
row.update({k: s[k] for k in keys})
print(json.dumps(row))
'
for ((i = 1; i <= repeats; i++)); do
    echo "train_vs_torch: run $i/$repeats: elag" >&2
    "$ELAG" train "$CONFIG" "${elag_args[@]}" --out "$tmp/elag-$i" --force --quiet >/dev/null
    "$PY" -c "$elag_row" "$tmp/elag-$i/summary.json" "$i" "$threads" >>"$rows"
    echo "train_vs_torch: run $i/$repeats: pytorch" >&2
    # Debian's torch does its GEMMs in OpenBLAS (pthread build), whose pool sizes itself from
    # this variable, not from torch.set_num_threads; pin it so both sides use the same cores.
    OPENBLAS_NUM_THREADS="$threads" "$PY" "$ROOT/bench/torch_train.py" "${torch_args[@]}" >"$tmp/torch-$i.json"
    "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); r["run"] = int(sys.argv[2]); print(json.dumps(r))' \
        "$tmp/torch-$i.json" "$i" >>"$rows"
done

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$RESULTS")"
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
elag_version="$("$ELAG" --version 2>/dev/null | head -n1 || true)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"

"$PY" - "$rows" "$RESULTS" "$(nproc)" "$cpu_model" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$elag_version" "$commit" "$repeats" "$threads" "$command" "$load_start" "$load_end" <<'EOF'
import json, os, statistics, sys

rows_path, out_path, nproc, cpu, date, elag_version, commit, repeats, threads, command, load_start, load_end = sys.argv[1:]
rows = [json.loads(line) for line in open(rows_path)]
keys = ["train_seconds", "samples_per_second", "mask_update_seconds", "test_accuracy", "sparsity"]

medians = {}
for fw in ("elag", "pytorch"):
    rs = [r for r in rows if r["framework"] == fw]
    m = {k: statistics.median(r[k] for r in rs) for k in keys}
    m["mask_update_share"] = statistics.median(r["mask_update_seconds"] / r["train_seconds"] for r in rs)
    m["epochs"], m["steps"] = rs[0]["epochs"], rs[0]["steps"]
    medians[fw] = m
ratio = medians["elag"]["samples_per_second"] / medians["pytorch"]["samples_per_second"]
torch_version = next(r["torch_version"] for r in rows if r["framework"] == "pytorch")

result = {
    "benchmark": "train_vs_torch",
    "command": command,
    "config": "configs/fashion_mlp_gmp.yaml",
    "repeats": int(repeats),
    "threads": int(threads),
    "medians": medians,
    "ratio_samples_per_second_elag_over_pytorch": ratio,
    "machine": {
        "nproc": int(nproc),
        "cpu_model": cpu,
        "date": date,
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "openblas_env": {k: os.environ[k] for k in sorted(os.environ) if k.startswith("OPENBLAS_")},
    },
    "elag_version": elag_version,
    "elag_commit": commit,
    "torch_version": torch_version,
    "rows": rows,
}
tmp = out_path + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out_path)

e, t = medians["elag"], medians["pytorch"]
print(f"training throughput, medians of {repeats} runs, {threads} threads, "
      f"{e['epochs']} epochs ({e['steps']} steps), {cpu}, nproc {nproc}")
print(f"{'':10}{'samples/s':>12}{'train s':>10}{'mask s':>9}{'mask %':>8}{'test acc':>10}{'sparsity':>10}")
for name, m in (("elag", e), ("pytorch", t)):
    print(f"{name:10}{m['samples_per_second']:12.0f}{m['train_seconds']:10.2f}"
          f"{m['mask_update_seconds']:9.3f}{100 * m['mask_update_share']:8.2f}"
          f"{m['test_accuracy']:10.4f}{m['sparsity']:10.4f}")
print(f"elag/pytorch samples/s: {ratio:.2f}x   (torch {torch_version}; written to {out_path})")
print(f"load average {load_start} before, {load_end} after")
EOF
