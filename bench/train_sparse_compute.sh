#!/usr/bin/env bash
# Whole training runs on the sparse pattern against the dense masked path (issue 12,
# Acceptance: configs/mlp2048_oneshot95.yaml, samples/s >= 2x `train.sparse_compute: off`,
# test accuracy within 0.3 point). Runs alternate (sparse, dense, sparse, ...) so drift in
# machine load hits both alike; each run's samples/s and test accuracy come from its
# summary.json. Prints one JSON row per run, then the medians and their ratio.
#
#   bench/train_sparse_compute.sh [-r ROUNDS] [--epochs E] [--config FILE]
#
# ELAG=path picks another binary (default build/elag). The runs go to a temporary folder,
# removed at the end. Set OMP_WAIT_POLICY yourself to compare wait policies (docs/sparse.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ELAG="${ELAG:-$ROOT/build/elag}"
rounds=2 epochs=1 config="$ROOT/configs/mlp2048_oneshot95.yaml"
while [ $# -gt 0 ]; do
    case "$1" in
    -r) rounds="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    *) echo "usage: see the head of $0" >&2; exit 2 ;;
    esac
done
[ -x "$ELAG" ] || { echo "no elag binary at $ELAG (set ELAG=)" >&2; exit 2; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}" >&2
for r in $(seq "$rounds"); do
    for mode in auto off; do
        "$ELAG" train "$config" --set train.sparse_compute=$mode --set train.epochs="$epochs" \
            --out "$out/$mode$r" --force --quiet >/dev/null
        python3 - "$out/$mode$r/summary.json" "$mode" "$r" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(json.dumps({"mode": sys.argv[2], "round": int(sys.argv[3]), "epochs": s["epochs"],
                  "samples_per_second": s["samples_per_second"],
                  "test_accuracy": s["test_accuracy"], "train_seconds": s["train_seconds"]}))
PY
    done
done | tee "$out/rows.jsonl"
python3 - "$out/rows.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {m: statistics.median(r["samples_per_second"] for r in rows if r["mode"] == m)
       for m in ("auto", "off")}
acc = {m: statistics.median(r["test_accuracy"] for r in rows if r["mode"] == m)
       for m in ("auto", "off")}
print(json.dumps({"sparse_samples_per_second": med["auto"], "dense_samples_per_second": med["off"],
                  "ratio": med["auto"] / med["off"], "sparse_test_accuracy": acc["auto"],
                  "dense_test_accuracy": acc["off"]}))
PY
