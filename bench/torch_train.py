#!/usr/bin/python3
"""PyTorch twin of configs/fashion_mlp_gmp.yaml, the baseline for bench/train_vs_torch.sh.

Trains LeNet-300-100 on Fashion-MNIST with SGD-momentum while pruning it by gradual magnitude
pruning (Zhu & Gupta) through torch.nn.utils.prune, on the CPU, and prints one JSON line with
the training throughput. Everything that is not training (reading the data set, the final test
evaluation) is outside the timed region, exactly as elag's summary.json counts it, so the two
samples_per_second figures measure the same work:

  network    Linear(784,300) ReLU Linear(300,100) ReLU Linear(100,10), softmax cross-entropy
  data       x/255, normalised with mean 0.2860, std 0.3530, held in memory as one tensor;
             a fresh torch.randperm per epoch; batches gathered by index (no DataLoader);
             the last partial batch is kept
  seed       1, as in the config (initial weights still differ: torch's default Linear init)
  optimizer  SGD lr 0.05, momentum 0.9, weight decay 5e-4, cosine LR to 0 at the last step
  pruning    layer scope, s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 with s_i 0, s_f 0.9,
             t0 = round(0.1 T), dt = 100, n = floor((round(0.7 T) - t0)/dt); masks recomputed
             before the forward pass of steps t0 + j dt, j = 0..n (steps counted from 0), so
             each weight matrix of n entries holds exactly round(s_t n) zeros; biases unpruned

Run it with the system interpreter, which has Debian's python3-torch and numpy:
  /usr/bin/python3 bench/torch_train.py [--epochs 10] [--threads 2] [--train-limit N]
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune

DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def c_round(x):
    """Round half away from zero, like C's round(); Python's round() rounds half to even."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def read_idx(path):
    """Read a gzip'ed IDX file (big-endian header: magic, dims) into a numpy array of uint8."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load(split, limit=None):
    """Return (x, y): x float32 (N, 784) normalised, y int64 (N,)."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    if limit is not None:
        x, y = x[:limit], y[:limit]
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32))
    x = (x / 255.0 - MEAN) / STD
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


def gmp_sparsity(t, t0, dt, n, s_i, s_f):
    """Zhu & Gupta cubic schedule, held at s_i before t0 and at s_f after t0 + n*dt."""
    if t < t0:
        return s_i
    if n == 0 or t >= t0 + n * dt:
        return s_f
    return s_f + (s_i - s_f) * (1.0 - (t - t0) / (n * dt)) ** 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=None, help="use the first N training examples")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.epochs < 1 or args.threads < 1 or args.batch_size < 1:
        ap.error("--epochs, --threads and --batch-size must be >= 1")
    if args.train_limit is not None and args.train_limit < 1:
        ap.error("--train-limit must be >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_train, y_train = load("train", args.train_limit)
    x_test, y_test = load("test")

    model = torch.nn.Sequential(
        torch.nn.Linear(784, 300), torch.nn.ReLU(),
        torch.nn.Linear(300, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10),
    )
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    # The optimizer holds the weight Parameters themselves; prune re-registers the same objects
    # as weight_orig, so creating it before pruning starts is correct.
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    n_train = len(x_train)
    bs = args.batch_size
    steps_per_epoch = (n_train + bs - 1) // bs
    total = args.epochs * steps_per_epoch
    t0 = c_round(0.1 * total)
    t_end = c_round(0.7 * total)
    dt = 100
    n_upd = max(0, (t_end - t0) // dt)
    s_i, s_f = 0.0, 0.9
    update_steps = {t0 + j * dt for j in range(n_upd + 1)}

    def update_masks(t):
        s = gmp_sparsity(t, t0, dt, n_upd, s_i, s_f)
        for m in layers:
            numel = m.weight.numel()
            have = int((m.weight_mask == 0).sum()) if hasattr(m, "weight_mask") else 0
            # amount counts only the still-unpruned entries, so it is the number of new zeros.
            prune.l1_unstructured(m, "weight", amount=max(0, c_round(s * numel) - have))

    gen = torch.Generator().manual_seed(args.seed)
    model.train()
    mask_seconds = train_seconds = 0.0
    step = 0
    for _ in range(args.epochs):
        perm = torch.randperm(n_train, generator=gen)
        # Like elag, the clock starts after the epoch's shuffle (well under 1 ms either way).
        start = time.perf_counter()
        for b in range(steps_per_epoch):
            if step in update_steps:
                m0 = time.perf_counter()
                update_masks(step)
                mask_seconds += time.perf_counter() - m0
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = x_train.index_select(0, idx), y_train.index_select(0, idx)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # cosine schedule per step, as elag's train.lr_schedule.type: cosine
            lr = 0.05 * 0.5 * (1.0 + math.cos(math.pi * step / max(1, total - 1)))
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            step += 1
        train_seconds += time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        correct = int((model(x_test).argmax(1) == y_test).sum())
        zeros = total_w = 0
        for m in layers:
            w = m.weight_orig * m.weight_mask if hasattr(m, "weight_mask") else m.weight
            zeros += int((w == 0).sum())
            total_w += w.numel()

    print(json.dumps({
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": args.threads,
        "epochs": args.epochs,
        "steps": step,
        "train_seconds": train_seconds,
        "samples_per_second": args.epochs * n_train / train_seconds,
        "mask_update_seconds": mask_seconds,
        "test_accuracy": correct / len(y_test),
        "sparsity": zeros / total_w,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
