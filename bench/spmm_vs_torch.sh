#!/usr/bin/env bash
# Sparse products on the CPU, elag vs PyTorch, side by side in one run (issue 4, Acceptance:
# "CSR at 90% ... at least 2x faster than torch.sparse CSR").
#
# Both sides compute y = W x with W (1024, 1024) pruned at random to each sparsity and x
# (1024, 256) dense, feature-major (the layout elag's inference uses; torch.sparse.mm(W_csr, x)
# takes it as is): elag through `elag bench spmm --formats dense,csr` (its CSR kernels and
# OpenBLAS dense), PyTorch through bench/spmm_vs_torch.py (torch.sparse.mm on a CSR tensor and
# torch.mm), the same thread count, the same timing method (warm-up, samples of at least 1 ms,
# medians). Each repeat runs elag and then PyTorch, so drift in machine load hits both alike.
# Prints medians and ratios; writes every raw row, the medians, the ratios and machine info to
# bench/results/spmm_vs_torch.json.
#
#   bench/spmm_vs_torch.sh [-r REPEATS] [--threads T] [--shape MxK] [--batch N]
#                          [--sparsity LIST] [--samples N]
#
# PyTorch comes from Debian's python3-torch, so the system interpreter (/usr/bin/python3) runs
# it; a python3 earlier on PATH may lack torch. ELAG=path/to/elag picks another binary
# (default build/elag, built without CUDA if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3
ELAG="${ELAG:-$ROOT/build/elag}"
RESULTS="$ROOT/bench/results/spmm_vs_torch.json"

command="bench/spmm_vs_torch.sh${*:+ $*}"
repeats=3
threads=2
shape=1024x1024
batch=256
sparsity=0.5,0.7,0.9,0.95
samples=10

usage() {
    cat <<'EOF'
usage: bench/spmm_vs_torch.sh [-r REPEATS] [--threads T] [--shape MxK] [--batch N]
                              [--sparsity LIST] [--samples N]
  -r N             alternating runs of each side (default 3); medians over runs are reported
  --threads T      threads for both (default 2)
  --shape MxK      weight shape (default 1024x1024)
  --batch N        batch, the columns of x (default 256)
  --sparsity LIST  sparsities (default 0.5,0.7,0.9,0.95)
  --samples N      timed samples per measurement within a run (default 10)
EOF
}

die() { echo "spmm_vs_torch: $*" >&2; exit 2; }
posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, got '$2'"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        -r|--repeats) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; repeats=$2; shift 2 ;;
        --threads) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; threads=$2; shift 2 ;;
        --batch) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; batch=$2; shift 2 ;;
        --samples) [[ $# -ge 2 ]] || die "$1 needs a value"; posint "$1" "$2"; samples=$2; shift 2 ;;
        --shape) [[ $# -ge 2 ]] || die "$1 needs a value"; [[ "$2" =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "--shape needs MxK, got '$2'"; shape=$2; shift 2 ;;
        --sparsity) [[ $# -ge 2 ]] || die "$1 needs a value"; sparsity=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

[[ -x "$PY" ]] || die "$PY not found (apt-get install python3-torch python3-numpy)"
"$PY" -c 'import torch, numpy' 2>/dev/null || die "$PY cannot import torch and numpy (apt-get install python3-torch)"
if [[ ! -x "$ELAG" ]]; then
    echo "spmm_vs_torch: building $ELAG" >&2
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DELAG_TESTS=OFF -DELAG_CUDA=OFF >/dev/null
    cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
fi

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${load_start%% *}" 'BEGIN { exit !(l > 0.5) }'; then
    echo "spmm_vs_torch: warning: load average $load_start before starting; the figures will be noisy" >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/spmm_vs_torch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.jsonl"
: >"$rows"

tag='
import json, sys
side, run = sys.argv[1:]
for line in sys.stdin:
    if line.startswith("{"):
        r = json.loads(line)
        r.setdefault("framework", side)
        r["run"] = int(run)
        print(json.dumps(r))
'
for ((i = 1; i <= repeats; i++)); do
    echo "spmm_vs_torch: run $i/$repeats: elag" >&2
    "$ELAG" bench spmm --device cpu --threads "$threads" --shape "$shape" --batch "$batch" \
        --sparsity "$sparsity" --formats dense,csr --repeat "$samples" --json --quiet |
        "$PY" -c "$tag" elag "$i" >>"$rows"
    echo "spmm_vs_torch: run $i/$repeats: pytorch" >&2
    # Debian's torch does dense GEMMs in OpenBLAS (pthreads), sized by OPENBLAS_NUM_THREADS.
    OPENBLAS_NUM_THREADS="$threads" "$PY" "$ROOT/bench/spmm_vs_torch.py" --shape "$shape" \
        --batch "$batch" --sparsity "$sparsity" --threads "$threads" --repeat "$samples" |
        "$PY" -c "$tag" torch "$i" >>"$rows"
done

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$RESULTS")"
cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
elag_version="$("$ELAG" --version 2>/dev/null | head -n1 || true)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"

"$PY" - "$rows" "$RESULTS" "$(nproc)" "$cpu_model" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$elag_version" "$commit" "$repeats" "$threads" "$command" "$load_start" "$load_end" <<'EOF'
import json, os, statistics, sys

(rows_path, out_path, nproc, cpu, date, elag_version, commit, repeats, threads, command,
 load_start, load_end) = sys.argv[1:]
rows = [json.loads(line) for line in open(rows_path)]

# median over runs of each run's median, per framework, format and sparsity
series = {}
for r in rows:
    key = (r["framework"], r["format"], float(round(r["sparsity"], 6)))
    series.setdefault(key, []).append(r)
medians = {}
for (fw, fmt, s), rs in sorted(series.items()):
    medians.setdefault(fw, {}).setdefault(fmt, {})[str(s)] = {
        "median_ms": statistics.median(r["median_ms"] for r in rs),
        "nnz": rs[0]["nnz"], "runs": len(rs)}

def ms(fw, fmt, s):
    return medians[fw][fmt][str(s)]["median_ms"]

sparsities = sorted({s for (fw, fmt, s) in series if fmt == "csr"})
d = lambda fw: ms(fw, "dense", 0.0)
table = []
for s in sparsities:
    table.append({"sparsity": s,
                  "elag_csr_ms": ms("elag", "csr", s), "torch_csr_ms": ms("torch", "csr", s),
                  "elag_dense_ms": d("elag"), "torch_dense_ms": d("torch"),
                  "elag_csr_over_torch_csr": ms("torch", "csr", s) / ms("elag", "csr", s),
                  "elag_csr_speedup_vs_elag_dense": d("elag") / ms("elag", "csr", s),
                  "torch_csr_speedup_vs_torch_dense": d("torch") / ms("torch", "csr", s),
                  "elag_csr_over_torch_dense": d("torch") / ms("elag", "csr", s)})
crossovers = sorted({r.get("crossover_sparsity") for r in rows
                     if r["framework"] == "elag" and r["format"] == "csr"}, key=str)
torch_version = next((r["torch_version"] for r in rows if r["framework"] == "torch"), None)
result = {
    "benchmark": "spmm_vs_torch",
    "command": command,
    "shape": rows[0]["shape"] if rows else None,
    "m": rows[0]["m"], "k": rows[0]["k"], "n": rows[0]["n"],
    "repeats": int(repeats),
    "threads": int(threads),
    "medians": medians,
    "table": table,
    "elag_csr_crossover_sparsity_per_run": crossovers,
    "machine": {"nproc": int(nproc), "cpu_model": cpu, "date": date,
                "loadavg_start": load_start, "loadavg_end": load_end},
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

print(f"y = W x, W {result['m']}x{result['k']}, x {result['k']}x{result['n']}, {threads} threads, "
      f"medians of {repeats} runs; {cpu}, nproc {nproc}")
print(f"dense: elag (OpenBLAS) {d('elag'):.3f} ms, torch.mm {d('torch'):.3f} ms")
print(f"{'sparsity':>9}{'elag csr ms':>13}{'torch csr ms':>14}{'elag/torch':>12}"
      f"{'elag vs dense':>15}{'torch vs dense':>16}")
for t in table:
    print(f"{t['sparsity']:9.2f}{t['elag_csr_ms']:13.4f}{t['torch_csr_ms']:14.4f}"
          f"{t['elag_csr_over_torch_csr']:11.2f}x{t['elag_csr_speedup_vs_elag_dense']:14.2f}x"
          f"{t['torch_csr_speedup_vs_torch_dense']:15.2f}x")
print(f"elag csr crossover sparsity (per run): {crossovers}")
print(f"torch {torch_version}; load average {load_start} before, {load_end} after; "
      f"written to {out_path}")
EOF
