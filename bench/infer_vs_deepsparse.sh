#!/usr/bin/env bash
# Sparse inference, elag against Neural Magic DeepSparse 1.8 on the same weights (issue 12,
# Acceptance: the quickstart model at 90%, batch 256 >= 1.2x DeepSparse's samples/s, batch 1
# latency <= DeepSparse's). Rounds alternate between the two so drift in machine load hits
# both alike; each round is `elag bench model EXPORT --json` (its sparse side: the export
# run by `elag infer`'s engine on random inputs, median of --repeat forwards) and
# bench/infer_vs_deepsparse.py (DeepSparse's engine.run on random inputs, median of as
# many runs), both at the same thread count.
#
#   bench/infer_vs_deepsparse.sh [-r ROUNDS] [--threads T] [--batch LIST] [--repeat N]
#                                [--model CKPT] [--format F]
#
# --model: an elag MLP checkpoint (default: configs/fashion_mlp_gmp.yaml trained once into
# build/bench-deepsparse/, the quickstart model); it is exported with `elag export --format F`
# (default csr) for elag and written as ONNX (Gemm + Relu, masked weights) for DeepSparse.
# DeepSparse lives in a venv under the build folder, never a dependency of elag; the script
# makes it when missing (PyPI, binary wheels for Python 3.11):
#   python3 -m venv build/deepsparse-venv
#   build/deepsparse-venv/bin/pip install --only-binary=:all: deepsparse==1.8.0 onnx
# VENV=path picks another venv, ELAG=path another binary (default build/elag).
# Prints every JSON row on stdout, then a summary table (medians over rounds) on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ELAG="${ELAG:-$ROOT/build/elag}"
VENV="${VENV:-$ROOT/build/deepsparse-venv}"
WORK="$ROOT/build/bench-deepsparse"
rounds=3 threads=2 batch=1,256 repeat=200 model="" format=csr
while [ $# -gt 0 ]; do
    case "$1" in
    -r) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --format) format="$2"; shift 2 ;;
    *) echo "usage: see the head of $0" >&2; exit 2 ;;
    esac
done
[ -x "$ELAG" ] || { echo "no elag binary at $ELAG (set ELAG=)" >&2; exit 2; }
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import deepsparse, onnx" 2>/dev/null; then
    echo "# making $VENV (deepsparse==1.8.0, onnx from PyPI)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --only-binary=:all: deepsparse==1.8.0 onnx >&2
fi
mkdir -p "$WORK"
if [ -z "$model" ]; then
    model="$WORK/run/model.safetensors"
    if [ ! -f "$model" ]; then
        echo "# training the quickstart model into $WORK/run" >&2
        "$ELAG" train "$ROOT/configs/fashion_mlp_gmp.yaml" --out "$WORK/run" --force --quiet \
            --set train.threads="$threads" >&2
    fi
fi
export_file="$WORK/model.$format.safetensors"
"$ELAG" export "$model" --format "$format" -o "$export_file" --force >/dev/null
"$VENV/bin/python" "$ROOT/bench/infer_vs_deepsparse.py" --model "$model" --onnx-out "$WORK/model.onnx"

rows="$WORK/rows.jsonl"
: >"$rows"
echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds, $threads threads" >&2
for _ in $(seq "$rounds"); do
    "$ELAG" bench model "$export_file" --batch "$batch" --threads "$threads" --repeat "$repeat" \
        --json | tee -a "$rows"
    "$VENV/bin/python" "$ROOT/bench/infer_vs_deepsparse.py" --onnx "$WORK/model.onnx" \
        --batch "$batch" --threads "$threads" --repeats "$repeat" | tee -a "$rows"
    # DeepSparse's own benchmark CLI (its timing loop, no Python per call): median ms/batch
    for b in ${batch//,/ }; do
        "$VENV/bin/deepsparse.benchmark" "$WORK/model.onnx" -b "$b" -ncores "$threads" -t 5 -w 1 \
            2>/dev/null | awk -v b="$b" -v t="$threads" '/Latency Median \(ms\/batch\)/ {
                printf "{\"runtime\": \"deepsparse.benchmark\", \"batch\": %d, \"threads\": %d, \"median_ms\": %s}\n", b, t, $NF }' |
            tee -a "$rows"
    done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$rows" >&2 <<'EOF'
import json, statistics, sys
elag, ds, cli = {}, {}, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = int(r["batch"])
    if r.get("runtime") == "deepsparse":
        ds.setdefault(b, []).append(r["median_ms"])
    elif r.get("runtime") == "deepsparse.benchmark":
        cli.setdefault(b, []).append(r["median_ms"])
    else:  # elag bench model: its sparse side
        ms = r.get("sparse_ms_median", r.get("sparse_latency_ms_median"))
        elag.setdefault(b, []).append(ms)
nan = [float("nan")]
print("medians over rounds, ms per batch; speedup = DeepSparse time / elag time")
print("batch   elag_ms  deepsparse_ms (engine.run)  speedup  deepsparse_ms (benchmark CLI)  speedup")
for b in sorted(elag):
    e = statistics.median(elag[b])
    d, c = statistics.median(ds.get(b, nan)), statistics.median(cli.get(b, nan))
    print(f"{b:5d} {e:9.4f} {d:27.4f} {d / e:7.2f}x {c:30.4f} {c / e:7.2f}x")
EOF
