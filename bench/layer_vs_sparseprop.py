#!/usr/bin/env python3
"""One training step of a linear layer (forward, backward to the input and the weight, SGD with
momentum), SparseProp's sparse layer against torch's dense nn.Linear, the same shapes and
random mask as `elag bench layer` (issue 12: the side-by-side training-layer comparison).

Run by bench/layer_vs_sparseprop.sh with the venv's interpreter (SparseProp from PyPI, built
against Debian's torch). Prints one JSON object per (sparsity, path): median_ms over --repeats
steps after warm-up, path "torch-dense" or "sparseprop"."""
import argparse
import json
import statistics
import time

import torch


def step_ms(layer, x, dy, opt, repeats, warmup):
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        y = layer(x)
        y.backward(dy)  # the input gradient comes with x.requires_grad
        opt.step()
        dt = (time.perf_counter() - t0) * 1e3
        if i >= warmup:
            times.append(dt)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="2048x2048")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--sparsity", default="0.9,0.95")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    from sparseprop.modules import SparseLinear  # the venv's

    torch.set_num_threads(a.threads)
    out_f, in_f = (int(v) for v in a.shape.split("x"))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(a.batch, in_f, generator=g) * 2 - 1
    x.requires_grad_(True)
    dy = torch.rand(a.batch, out_f, generator=g) * 2 - 1
    dense = torch.nn.Linear(in_f, out_f, bias=False)
    opt = torch.optim.SGD(dense.parameters(), lr=0.01, momentum=0.9)
    dense_ms = step_ms(dense, x, dy, opt, a.repeats, a.warmup)
    for s in (float(v) for v in a.sparsity.split(",")):
        w = dense.weight.detach().clone()
        w *= (torch.rand(w.shape, generator=g) >= s).float()
        sp = SparseLinear(w)
        sopt = torch.optim.SGD(sp.parameters(), lr=0.01, momentum=0.9)
        sp_ms = step_ms(sp, x, dy, sopt, a.repeats, a.warmup)
        for path, ms in (("torch-dense", dense_ms), ("sparseprop", sp_ms)):
            print(json.dumps({"shape": a.shape, "batch": a.batch, "sparsity": s, "path": path,
                              "median_ms": ms, "speedup_vs_dense": dense_ms / ms,
                              "threads": a.threads, "repeat": a.repeats}), flush=True)


if __name__ == "__main__":
    main()
