#!/usr/bin/env bash
# Training throughput on a CNN, elag vs PyTorch, side by side in one run: bench/train_vs_torch.sh
# (see it, and docs/perf-train.md) with a CNN config and its own results file. Both sides train
# the network of configs/fashion_cnn_gmp.yaml (vgg-small on Fashion-MNIST, SGD-momentum, cosine
# LR, GMP) unless --config says otherwise; PyTorch builds it from the config elag resolved.
#
#   bench/train_cnn_vs_torch.sh [-r REPEATS] [--epochs N] [--threads T] [--train-limit N]
#                               [--variants stock,blas1,passive] [--config FILE] [--results FILE]
#   bench/train_cnn_vs_torch.sh --epochs 1 --train-limit 2048 -r 1     # a quick try
#
# Writes bench/results/train_cnn_vs_torch.json. Options given here come after the defaults, so
# they win (--config configs/fashion_cnn_dense.yaml compares the unpruned network).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_COMMAND="bench/train_cnn_vs_torch.sh${*:+ $*}" exec "$ROOT/bench/train_vs_torch.sh" \
    --config "$ROOT/configs/fashion_cnn_gmp.yaml" \
    --results "$ROOT/bench/results/train_cnn_vs_torch.json" "$@"
