#!/usr/bin/env bash
# Training throughput, elag vs PyTorch, side by side in one run (issue 2, Acceptance "Benchmark").
#
# Both sides train the network of one elag config on Fashion-MNIST with the same batch, optimizer,
# LR schedule and pruning schedule on the CPU with the same thread count, data held in memory. By
# default that is LeNet-300-100 with SGD-momentum and gradual magnitude pruning
# (configs/fashion_mlp_gmp.yaml); bench/train_cnn_vs_torch.sh runs this script on a CNN config.
# bench/torch_train.py is the PyTorch twin: it builds its network and schedules from the resolved
# config that elag's run of the same repeat wrote (runs/<name>/config.yaml, presets expanded into
# model.layers), and the script checks that both networks have the same parameter counts before it
# times PyTorch. PyTorch runs in up to three thread set-ups (see TORCH_VARIANTS) because its stock
# one loses most of its speed to two thread pools fighting over few cores; the headline ratio is
# against the fastest of them, so the baseline is PyTorch at its best, not a straw man. Each repeat runs elag and then every
# PyTorch variant, so drift in machine load hits all sides alike. Prints medians, the ratios
# and elag's mask-update share of training time; writes every raw row, the medians and machine
# info to bench/results/train_vs_torch.json (--results FILE).
#
#   bench/train_vs_torch.sh [-r REPEATS] [--epochs N] [--threads T] [--train-limit N]
#                           [--variants stock,blas1,passive] [--config FILE] [--results FILE]
#
# PyTorch comes from Debian's python3-torch, so the system interpreter (/usr/bin/python3) runs
# it and parses the JSON here; a python3 earlier on PATH may lack torch, numpy and yaml. What is
# missing (those, the data set, the build tools) is installed through scripts/setup.sh, as
# scripts/test does.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3
ELAG="$ROOT/build/elag"
CONFIG="$ROOT/configs/fashion_mlp_gmp.yaml"
RESULTS="$ROOT/bench/results/train_vs_torch.json"

# bench/train_cnn_vs_torch.sh runs this script with its own defaults and names itself here.
command="${BENCH_COMMAND:-bench/train_vs_torch.sh${*:+ $*}}"
repeats=3
epochs=""
threads=2
train_limit=""
variants="stock,blas1,passive"

usage() {
    cat <<'EOF'
usage: bench/train_vs_torch.sh [-r REPEATS] [--epochs N] [--threads T] [--train-limit N]
                               [--variants LIST] [--config FILE] [--results FILE]
       bench/train_cnn_vs_torch.sh [the same options]
  -r N             repeats of each side (default 3); medians are reported
  --epochs N       epochs for both (default: the config's)
  --threads T      threads for both (default 2)
  --train-limit N  first N training examples, for a quick try (default: all 60000)
  --variants LIST  PyTorch thread set-ups to run, comma-separated (default stock,blas1,passive):
                     stock    torch.set_num_threads(T), OPENBLAS_NUM_THREADS=T
                     blas1    as stock, but OPENBLAS_NUM_THREADS=1 (GEMMs on one thread)
                     passive  as stock, plus OMP_WAIT_POLICY=PASSIVE (no OpenMP spin-waiting)
  --config FILE    the elag config both sides train (default configs/fashion_mlp_gmp.yaml;
                   bench/train_cnn_vs_torch.sh: configs/fashion_cnn_gmp.yaml)
  --results FILE   where the JSON goes (default bench/results/train_vs_torch.json;
                   bench/train_cnn_vs_torch.sh: bench/results/train_cnn_vs_torch.json)
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
        --variants) [[ $# -ge 2 ]] || die "$1 needs a value"; variants=$2; shift 2 ;;
        --config) [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a file"; CONFIG=$(realpath -m -- "$2"); shift 2 ;;
        --results) [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a file"; RESULTS=$(realpath -m -- "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

# PyTorch variants: name -> environment for torch_train.py. Debian's torch does its GEMMs in
# OpenBLAS (pthread build), whose pool sizes itself from OPENBLAS_NUM_THREADS, not from
# torch.set_num_threads, so every variant pins it; its other ops run on libgomp's OpenMP pool.
declare -A TORCH_VARIANTS=(
    [stock]="OPENBLAS_NUM_THREADS=$threads"
    [blas1]="OPENBLAS_NUM_THREADS=1"
    [passive]="OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE"
)
IFS=, read -r -a torch_variants <<<"$variants"
[[ ${#torch_variants[@]} -gt 0 ]] || die "--variants needs at least one of stock, blas1, passive"
for v in "${torch_variants[@]}"; do
    [[ -n "${TORCH_VARIANTS[$v]+set}" ]] || die "unknown PyTorch variant '$v' (stock, blas1, passive)"
done

[[ -f "$CONFIG" ]] || die "$CONFIG not found"
# The packages scripts/quickstart and scripts/test install (build tools, dataset-fashion-mnist),
# plus PyTorch's side; apt-get runs only when one is missing.
# shellcheck source=scripts/setup.sh
source "$ROOT/scripts/setup.sh"
elag_install_missing python3-torch python3-numpy python3-yaml
[[ -x "$PY" ]] || die "$PY not found (apt-get install python3-torch python3-numpy python3-yaml)"
"$PY" -c 'import torch, numpy, yaml' 2>/dev/null ||
    die "$PY cannot import torch, numpy and yaml (apt-get install python3-torch python3-yaml)"
# the config's path for the JSON: relative to the repository when it is in it
config_name="$(realpath --relative-base="$ROOT" -- "$CONFIG")"
benchmark="$(basename -- "$RESULTS" .json)"

# Use the binary scripts/quickstart and scripts/test build; without one, build a CPU-only CLI in
# build-bench/, not build/, so that its cached -DELAG_TESTS=OFF cannot leak into scripts/test.
if [[ ! -x "$ELAG" ]]; then
    ELAG="$ROOT/build-bench/elag"
    echo "train_vs_torch: no build/elag; building $ELAG" >&2
    cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release -DELAG_TESTS=OFF -DELAG_CUDA=OFF >/dev/null
    cmake --build "$ROOT/build-bench" -j"$(nproc)" >/dev/null || die "building $ELAG failed"
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

# Every side uses all the cores it is given; anything else running skews the ratio.
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${load_start%% *}" 'BEGIN { exit !(l > 0.5) }'; then
    echo "train_vs_torch: warning: load average $load_start before starting; the figures will be noisy" >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/train_vs_torch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.jsonl"
: >"$rows"

# Other processes' share of the machine's CPU time while one run was going: all busy time in
# /proc/stat minus the time this script's children used. Rows above a few percent were disturbed.
clk_tck="$(getconf CLK_TCK)"
cpu_stat() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# `times` must run in this shell, not in a pipe or $(...) whose subshell has no children yet;
# so these set variables, and `times` writes to a file. Its second line: children's user, sys.
children_cpu() {
    times >"$tmp/times"
    cpu="$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); s += a[1] * 60 + a[2] } print s }' "$tmp/times")"
}
measure_start() { read -r busy0 total0 < <(cpu_stat); children_cpu; self0=$cpu; }
measure_end() {   # sets $other
    local busy1 total1
    read -r busy1 total1 < <(cpu_stat)
    children_cpu
    other="$(awk -v b="$((busy1 - busy0))" -v t="$((total1 - total0))" -v s0="$self0" -v s1="$cpu" \
        -v hz="$clk_tck" 'BEGIN { o = t > 0 ? (b / hz - (s1 - s0)) / (t / hz) : 0; printf "%.4f", o < 0 ? 0 : o }')"
}

# One JSON row per run, tagged with run number, variant and environment; elag's figures come
# from its summary.json, PyTorch's from torch_train.py's one line.
to_row='
import json, sys
path, side, run, threads, variant, env, other = sys.argv[1:]
r = json.load(open(path))
if side == "elag":
    keys = ["epochs", "steps", "train_seconds", "samples_per_second", "mask_update_seconds",
            "test_accuracy", "sparsity"]
    r = dict({"framework": "elag", "threads": int(threads)}, **{k: r[k] for k in keys})
r.update(run=int(run), variant=variant, env=env, other_cpu_share=float(other))
print(json.dumps(r))
'
# Both sides must hold the same network: the same prunable weight tensors, in order (elag's
# summary.json lists them under layers; torch_train.py --describe as prunable_tensors), and the
# same parameter count (elag's params_total may count batchnorm's running statistics, which
# PyTorch keeps as buffers).
check_network='
import json, math, sys
e, t = (json.load(open(p)) for p in sys.argv[1:])
bad = []
ep, tp = e.get("params_prunable"), t["params_prunable"]
if ep != tp:
    bad.append(f"params_prunable: elag {ep}, pytorch {tp}")
ew = [(l["name"], l["params"]) for l in e.get("layers", [])]
tw = [(x["name"], math.prod(x["shape"])) for x in t["prunable_tensors"]]
if [n for _, n in ew] != [n for _, n in tw]:
    bad.append(f"prunable weights: elag {ew}, pytorch {tw}")
et, tt, tb = e.get("params_total"), t["params_total"], t["params_buffers"]
if et not in (tt, tt + tb):
    bad.append(f"params_total: elag {et}, pytorch {tt} (+ {tb} in batchnorm running statistics)")
if bad:
    sys.exit("train_vs_torch: the networks differ: " + "; ".join(bad))
'
for ((i = 1; i <= repeats; i++)); do
    echo "train_vs_torch: run $i/$repeats: elag" >&2
    measure_start
    rc=0
    "$ELAG" train "$CONFIG" "${elag_args[@]}" --out "$tmp/elag-$i" --force --quiet >/dev/null || rc=$?
    [[ $rc -eq 0 ]] || die "'$ELAG train $config_name' failed (exit $rc; elag's message is" \
        "above). If the config uses layers this build lacks, rebuild it: $ELAG is used as it is"
    measure_end
    "$PY" -c "$to_row" "$tmp/elag-$i/summary.json" elag "$i" "$threads" default "" "$other" >>"$rows"
    # PyTorch reads the config elag resolved (presets expanded, --set applied) for this repeat.
    resolved="$tmp/elag-$i/config.yaml"
    [[ -f "$resolved" ]] || die "elag wrote no $resolved"
    if [[ $i -eq 1 ]]; then
        "$PY" "$ROOT/bench/torch_train.py" --config "$resolved" "${torch_args[@]}" --describe \
            >"$tmp/network.json" 2>"$tmp/network.txt" ||
            { cat "$tmp/network.txt" >&2; die "bench/torch_train.py cannot build the network of $config_name"; }
        "$PY" -c "$check_network" "$tmp/elag-1/summary.json" "$tmp/network.json" ||
            { cat "$tmp/network.txt" >&2; die "elag and PyTorch would not train the same network"; }
    fi
    for v in "${torch_variants[@]}"; do
        echo "train_vs_torch: run $i/$repeats: pytorch $v (${TORCH_VARIANTS[$v]})" >&2
        measure_start
        # shellcheck disable=SC2086  # the variant's environment splits into NAME=VALUE words
        env ${TORCH_VARIANTS[$v]} "$PY" "$ROOT/bench/torch_train.py" --config "$resolved" \
            "${torch_args[@]}" >"$tmp/torch-$v-$i.json" ||
            die "bench/torch_train.py failed (variant $v, config $resolved)"
        measure_end
        "$PY" -c "$to_row" "$tmp/torch-$v-$i.json" pytorch "$i" "$threads" "$v" "${TORCH_VARIANTS[$v]}" "$other" >>"$rows"
    done
done

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$RESULTS")"
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
elag_version="$("$ELAG" --version 2>/dev/null | head -n1 || true)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"

"$PY" - "$rows" "$RESULTS" "$(nproc)" "$cpu_model" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$elag_version" "$commit" "$repeats" "$threads" "$command" "$load_start" "$load_end" \
    "$benchmark" "$config_name" "$tmp/network.json" "$tmp/elag-1/summary.json" <<'EOF'
import json, os, statistics, sys

(rows_path, out_path, nproc, cpu, date, elag_version, commit, repeats, threads, command,
 load_start, load_end, benchmark, config, network_path, elag_summary_path) = sys.argv[1:]
network = json.load(open(network_path))
config_hash = json.load(open(elag_summary_path)).get("config_hash")
rows = [json.loads(line) for line in open(rows_path)]
keys = ["train_seconds", "samples_per_second", "mask_update_seconds", "test_accuracy", "sparsity"]

medians = {}
for r in rows:
    medians.setdefault(r["framework"] if r["framework"] == "elag" else "pytorch-" + r["variant"], [])
for side in medians:
    rs = [r for r in rows
          if (r["framework"] == "elag" and side == "elag") or "pytorch-" + r.get("variant", "") == side]
    m = {k: statistics.median(r[k] for r in rs) for k in keys}
    m["mask_update_share"] = statistics.median(r["mask_update_seconds"] / r["train_seconds"] for r in rs)
    m["epochs"], m["steps"], m["env"] = rs[0]["epochs"], rs[0]["steps"], rs[0]["env"]
    medians[side] = m

e = medians["elag"]
torch_sides = [s for s in medians if s != "elag"]
best = max(torch_sides, key=lambda s: medians[s]["samples_per_second"])
ratios = {s: e["samples_per_second"] / medians[s]["samples_per_second"] for s in torch_sides}
torch_version = next(r["torch_version"] for r in rows if r["framework"] == "pytorch")

result = {
    "benchmark": benchmark,
    "command": command,
    "config": config,
    # the resolved config's hash (elag's summary.json) and the network both sides trained
    "config_hash": config_hash,
    "network": {k: network[k] for k in ("input_shape", "output_shape", "params_total",
                                        "params_prunable", "params_buffers", "prunable_tensors",
                                        "layers")},
    "repeats": int(repeats),
    "threads": int(threads),
    "medians": medians,
    # the headline: elag against the fastest PyTorch set-up measured
    "ratio_samples_per_second_elag_over_pytorch": ratios[best],
    "pytorch_best_variant": best,
    "ratios_by_variant": ratios,
    "elag_mask_update_share": e["mask_update_share"],
    "max_other_cpu_share": max(r["other_cpu_share"] for r in rows),
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

print(f"training throughput, {config} ({network['params_total']} parameters), medians of "
      f"{repeats} runs, {threads} threads, {e['epochs']} epochs ({e['steps']} steps), {cpu}, "
      f"nproc {nproc}")
print(f"{'':17}{'samples/s':>11}{'train s':>9}{'mask s':>8}{'mask %':>8}{'test acc':>10}"
      f"{'sparsity':>10}{'elag/this':>11}")
for side, m in medians.items():
    r = f"{ratios[side]:10.2f}x" if side in ratios else ""
    print(f"{side:17}{m['samples_per_second']:11.0f}{m['train_seconds']:9.2f}"
          f"{m['mask_update_seconds']:8.3f}{100 * m['mask_update_share']:8.2f}"
          f"{m['test_accuracy']:10.4f}{m['sparsity']:10.4f}{r:>11}")
print(f"elag/pytorch samples/s: {ratios[best]:.2f}x against the fastest PyTorch ({best}); "
      f"elag's mask updates {100 * e['mask_update_share']:.2f}% of training time")
disturbed = [r for r in rows if r["other_cpu_share"] > 0.05]
if disturbed:
    worst = max(r["other_cpu_share"] for r in rows)
    print(f"warning: other processes took more than 5% of the CPU during {len(disturbed)} of "
          f"{len(rows)} runs (worst {100 * worst:.0f}%); see other_cpu_share in the JSON")
print(f"torch {torch_version}; load average {load_start} before, {load_end} after; "
      f"written to {out_path}")
EOF
