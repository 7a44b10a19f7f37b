#!/usr/bin/env bash
# Writes the seed corpora of tests/fuzz/corpus/<reader>/ from real files: a tiny MLP
# (tests/data/bad/good.yaml, synthetic data) and a tiny CNN on 64 Fashion-MNIST images are
# trained with the CLI, then checkpointed and exported (dense, CSR, Blocked-ELL, thinned
# CSR); the IDX seeds are slices of Debian's Fashion-MNIST; the ledger seeds are the sweep
# fixture, a torn copy and a few odd lines; the config seeds are configs/*.yaml and a few
# of tests/data/bad/config/.
# The committed corpus was made with this script (keep it small: under 300 KB in all).
#
# usage: tests/fuzz/make_seeds.sh ELAG_CLI
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 ELAG_CLI" >&2; exit 2; }
ELAG=$(realpath "$1")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$SRC/tests/fuzz/corpus
FASHION=${ELAG_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/elag-seeds.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"/{config,safetensors,export,idx,ledger,onnx}

# ---- config ----
for f in "$SRC"/configs/*.yaml "$SRC"/tests/data/bad/good.yaml; do
  cp "$f" "$OUT/config/$(basename "$f")"
done
for f in deep-nesting duplicate-key layer-unknown-key name-slash two-documents typo-nested; do
  cp "$SRC/tests/data/bad/config/$f.yaml" "$OUT/config/bad-$f.yaml"
done

# ---- checkpoints and exports: a tiny MLP and a tiny CNN ----
cp "$SRC/tests/data/bad/good.yaml" "$WORK/mlp.yaml"
cat >"$WORK/cnn.yaml" <<YAML
name: seed-cnn
seed: 1
data: {dataset: fashion-mnist, path: $FASHION, train_limit: 64, test_limit: 16}
model:
  layers:
    - {type: conv2d, out_channels: 2, kernel: 5, stride: 3, bias: false}
    - {type: batchnorm}
    - {type: relu}
    - {type: maxpool, kernel: 2}
    - {type: flatten}
    - {type: dropout, p: 0.1}
    - {type: linear, out_features: 10}
train: {epochs: 1, batch_size: 32, threads: 1}
prune: {method: gmp, target: 0.5, start: 0.0, end: 1.0, frequency: 1}
YAML
for m in mlp cnn; do
  "$ELAG" train "$WORK/$m.yaml" --out "$WORK/$m" --quiet >/dev/null
  cp "$WORK/$m/model.safetensors" "$OUT/safetensors/$m-checkpoint.safetensors"
  for fmt in dense csr bell:8; do
    "$ELAG" export "$WORK/$m/model.safetensors" --format "$fmt" \
      -o "$OUT/export/$m-${fmt%%:*}.safetensors" >/dev/null
  done
  # thinned: its "thinned" metadata ([kept, original] per layer) is read back too
  "$ELAG" export "$WORK/$m/model.safetensors" --format csr --thin \
    -o "$OUT/export/$m-csr-thin.safetensors" >/dev/null
  "$ELAG" export "$WORK/$m/model.safetensors" --format onnx -o "$OUT/onnx/$m.onnx" >/dev/null
done
# A few near-misses from the bad-input corpus (tests/data/bad/make_bad.py) as well.
mkdir -p "$WORK/bad/good"
cp "$WORK/mlp/model.safetensors" "$WORK/bad/good/model.safetensors"
cp "$OUT/export/mlp-csr.safetensors" "$WORK/bad/good/model.csr.safetensors"
cp "$OUT/export/mlp-bell.safetensors" "$WORK/bad/good/model.bell.safetensors"
python3 "$SRC/tests/data/bad/make_bad.py" "$WORK/bad" >/dev/null
for f in classes-2g offsets-overlap header-trailing-bytes mask-two; do
  cp "$WORK/bad/ckpt/$f.safetensors" "$OUT/safetensors/bad-$f.safetensors"
done
for f in indptr-decreasing bell-column-out-of-range nnz-plus-one shape-meta; do
  cp "$WORK/bad/exp/$f.safetensors" "$OUT/export/bad-$f.safetensors"
done

# ---- IDX: 4-byte little-endian image-file length, image file, label file (fuzz_idx.c) ----
python3 - "$FASHION" "$OUT/idx" <<'PY'
import gzip, struct, sys
src, out = sys.argv[1], sys.argv[2]
images = gzip.open(src + "/t10k-images-idx3-ubyte.gz").read()
labels = gzip.open(src + "/t10k-labels-idx1-ubyte.gz").read()
def pair(n, rows=28, cols=28, gz_images=False, gz_labels=False):
    im = struct.pack(">IIII", 0x803, n, rows, cols) + images[16:16 + n * 784][: n * rows * cols]
    lb = struct.pack(">II", 0x801, n) + labels[8:8 + n]
    if gz_images: im = gzip.compress(im, mtime=0)
    if gz_labels: lb = gzip.compress(lb, mtime=0)
    return struct.pack("<I", len(im)) + im + lb
for name, data in [("fashion-2", pair(2)), ("fashion-3-gz", pair(3, gz_images=True, gz_labels=True)),
                   ("small-5x4x4", pair(5, 4, 4)), ("small-gz-labels", pair(4, 3, 5, gz_labels=True))]:
    open(f"{out}/{name}.idx", "wb").write(data)
PY

# ---- ledger ----
cp "$SRC/tests/data/sweep_fixture/results.jsonl" "$OUT/ledger/fixture.jsonl"
head -c 900 "$SRC/tests/data/sweep_fixture/results.jsonl" >"$OUT/ledger/torn.jsonl"
printf '%s\n' '{"run_id":"a","status":"failed","x":1}' 'not json' '' \
  '{"run_id":"a","status":"ok","seed":2,"layers":[{"name":"fc1","shape":[3,4]}]}' \
  '{"status":"ok"}' '[1,2]' >"$OUT/ledger/dedupe.jsonl"

du -sb "$OUT" | awk '{ printf "tests/fuzz/corpus: %d bytes\n", $1 }'
