#!/usr/bin/env python3
"""The PyTorch round trip of issue 13 (docs/onnx.md): a model trained in PyTorch is
imported into elag, evaluated, then pruned and fine-tuned by `elag train`.

  1. LeNet-300-100 (784-300-100-10, ReLU) trained in PyTorch (Debian's python3-torch) on
     Fashion-MNIST for --torch-epochs, on the inputs elag's data config gives
     ((x/255 - 0.2860) / 0.3530);
  2. exported with torch.onnx.export (opset 13, dynamic batch), then `elag import`;
  3. `elag eval` of the import: its test accuracy must be within 0.002 of PyTorch's;
  4. `elag train configs/fashion_mlp_gmp.yaml` (preset lenet-300-100, GMP to 90%) with
     train.init_from = the import, for --finetune-epochs at learning rate --finetune-lr:
     the run must reach 90% sparsity.

usage: onnx_torch_roundtrip.py --elag PATH/TO/elag --workdir DIR [--torch-epochs 1]
       [--finetune-epochs 1] [--finetune-lr 0.01] [--threads 0]
Prints one JSON object with the figures; exit 0 when both checks hold, 1 otherwise.
tests/test_onnx_torch.c runs it (skipping without torch).
"""
import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # elag's data.mean and data.std defaults
ACCURACY_TOL = 0.002
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def idx(name, offset):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load(split):
    x = idx(f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32)
    y = idx(f"{split}-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return torch.from_numpy((x / 255.0 - MEAN) / STD), torch.from_numpy(y)


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--elag", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--torch-epochs", type=int, default=1)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    xtr, ytr = load("train")
    xte, yte = load("t10k")

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                          nn.ReLU(), nn.Linear(100, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    t0 = time.time()
    for _ in range(a.torch_epochs):
        perm = torch.randperm(xtr.shape[0])
        for i in range(0, xtr.shape[0], 128):
            b = perm[i : i + 128]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[b]), ytr[b]).backward()
            opt.step()
    torch_seconds = time.time() - t0
    model.eval()
    torch_acc = accuracy(model, xte, yte)

    onnx = os.path.join(a.workdir, "lenet_torch.onnx")
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), onnx, input_names=["input"],
                      output_names=["logits"], opset_version=13,
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    ckpt = os.path.join(a.workdir, "lenet_torch.safetensors")
    run([a.elag, "import", onnx, "-o", ckpt, "--force"])
    out = run([a.elag, "eval", ckpt, "--device", "cpu"])
    elag_acc = float(re.search(r"test accuracy\s+([0-9.]+)", out).group(1))

    rundir = os.path.join(a.workdir, "pruned")
    t0 = time.time()
    run([a.elag, "train", os.path.join(ROOT, "configs", "fashion_mlp_gmp.yaml"), "--out", rundir,
         "--force", "--quiet", "--device", "cpu",
         "--set", f"train.init_from={ckpt}",
         "--set", f"train.epochs={a.finetune_epochs}",
         "--set", f"train.optimizer.lr={a.finetune_lr}",
         "--set", f"train.threads={a.threads}",
         "--set", "prune.start=0.0", "--set", "prune.end=0.7"])
    finetune_seconds = time.time() - t0
    with open(os.path.join(rundir, "summary.json")) as f:
        summary = json.load(f)
    pruned_acc = summary.get("test_accuracy")
    sparsity = summary.get("sparsity")
    ok = abs(elag_acc - torch_acc) <= ACCURACY_TOL and sparsity is not None and sparsity >= 0.8999
    print(json.dumps({
        "torch_epochs": a.torch_epochs,
        "torch_test_accuracy": round(torch_acc, 4),
        "torch_train_seconds": round(torch_seconds, 1),
        "elag_eval_accuracy_of_import": elag_acc,
        "finetune_epochs": a.finetune_epochs,
        "finetune_lr": a.finetune_lr,
        "pruned_test_accuracy": pruned_acc,
        "pruned_sparsity": sparsity,
        "finetune_seconds": round(finetune_seconds, 1),
        "ok": ok,
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
