#!/usr/bin/python3
"""PyTorch side of bench/spmm_vs_torch.sh: torch.sparse CSR and dense products on the CPU.

The same product as `elag bench spmm`: weights W (m, k) with uniform random unstructured
masks, feature-major activations x (k, n) dense, y = W x, here `torch.sparse.mm(W_csr, x)`
for CSR (W converted with `to_sparse_csr()`, outside the timed region) and `torch.mm(W, x)`
for dense. Timed like elag's engine: warm-up runs, then `repeat` samples, each running the
product often enough to last at least min_sample_ms; median, p10 and p90 per sample.
The masks come from numpy's Philox (seeded), not from elag's Philox stream, so the two sides
prune different but equally random weights at the same sparsity; SpMM time depends on the
count and spread of the nonzeros, not on which ones they are.

Prints one JSON object per (sparsity, format) on stdout, fields named as elag's rows.
Run with the system interpreter (Debian's python3-torch):
  /usr/bin/python3 bench/spmm_vs_torch.py [--shape 1024x1024] [--batch 256]
      [--sparsity 0.5,0.7,0.9,0.95] [--threads 2] [--repeat 10] [--warmup 3]
"""
import argparse
import json
import statistics
import sys
import time
import warnings

import numpy as np
import torch


def parse_list(text, kind):
    return [kind(t) for t in text.split(",") if t]


def quantile(sorted_v, q):
    pos = q * (len(sorted_v) - 1)
    i = int(pos)
    if i >= len(sorted_v) - 1:
        return sorted_v[-1]
    return sorted_v[i] + (pos - i) * (sorted_v[i + 1] - sorted_v[i])


def time_op(fn, repeat, warmup, min_sample_ms):
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    one = (time.perf_counter() - t0) * 1e3
    inner = 1 if one >= min_sample_ms else min(100000, int(-(-min_sample_ms // max(one, 1e-4))))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) * 1e3 / inner)
    samples.sort()
    return {"median_ms": statistics.median(samples), "p10_ms": quantile(samples, 0.1),
            "p90_ms": quantile(samples, 0.9), "inner": inner}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="1024x1024", help="MxK of W (default 1024x1024)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--sparsity", default="0.5,0.7,0.9,0.95")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-sample-ms", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    m, k = (int(v) for v in a.shape.lower().split("x"))
    n = a.batch
    torch.set_num_threads(a.threads)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    rng = np.random.Generator(np.random.Philox(a.seed))
    values = (rng.random((m, k), dtype=np.float32) * 2 - 1).astype(np.float32)
    values[values == 0] = 0.5
    u = rng.random((m, k), dtype=np.float32)
    x = torch.from_numpy((rng.random((k, n), dtype=np.float32) * 2 - 1).astype(np.float32))
    dense = torch.from_numpy(values)
    common = {"shape": a.shape, "m": m, "k": k, "n": n, "device": "cpu", "framework": "torch",
              "torch_version": torch.__version__, "threads": torch.get_num_threads(),
              "repeat": a.repeat, "warmup": a.warmup}
    with torch.no_grad():
        t = time_op(lambda: torch.mm(dense, x), a.repeat, a.warmup, a.min_sample_ms)
        dense_ms = t["median_ms"]
        print(json.dumps(dict(common, sparsity=0.0, format="dense", nnz=m * k,
                              speedup_vs_dense=1.0, **t)), flush=True)
        for s in parse_list(a.sparsity, float):
            w = torch.from_numpy(np.where(u >= s, values, np.float32(0)))
            csr = w.to_sparse_csr()
            y = torch.sparse.mm(csr, x)
            err = float((y - torch.mm(w, x)).abs().max()) if m * n else 0.0
            if err > 1e-3:
                sys.exit("spmm_vs_torch: torch.sparse.mm differs from torch.mm by %g" % err)
            t = time_op(lambda: torch.sparse.mm(csr, x), a.repeat, a.warmup, a.min_sample_ms)
            nnz = int(csr.values().numel())
            print(json.dumps(dict(common, sparsity=s, actual_sparsity=1 - nnz / (m * k),
                                  format="csr", nnz=nnz,
                                  speedup_vs_dense=dense_ms / t["median_ms"], **t)), flush=True)


if __name__ == "__main__":
    main()
