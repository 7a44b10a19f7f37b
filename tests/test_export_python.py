#!/usr/bin/python3
"""Reads an elag CSR export with numpy only and reproduces elag's logits.

    test_export_python.py EXPORT EXPECTED

EXPORT is a file written by `elag export --format csr`; EXPECTED is a safetensors file
with "inputs" (k, input_dim) and "logits" (k, classes), both F32, that elag computed.
The safetensors container is parsed by hand (8-byte little-endian header length, JSON
header, raw little-endian data), the network is rebuilt from the "graph" metadata, and
the logits must agree with elag's within max |a - b| / max(1, |b|) <= 1e-4.
Exit 0 on agreement, 1 on a mismatch or a malformed file (message on stderr).
"""
import json
import struct
import sys

import numpy as np

TOL = 1e-4
DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + hlen:]
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        dtype = np.dtype(DTYPES[t["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(data[begin:end], dtype=dtype)
        tensors[name] = arr.reshape(t["shape"])
    return tensors, meta


def csr_to_dense(indptr, indices, values, rows, cols):
    w = np.zeros((rows, cols), dtype=np.float64)
    for r in range(rows):
        lo, hi = int(indptr[r]), int(indptr[r + 1])
        w[r, indices[lo:hi]] = values[lo:hi]
    return w


def forward(tensors, meta, x):
    graph = json.loads(meta["graph"])
    h = x.astype(np.float64)
    for layer in graph:
        name, kind = layer["name"], layer["type"]
        if kind == "linear":
            rows, cols = json.loads(meta[name + ".weight.shape"])
            if layer["format"] != "csr":
                raise ValueError(f"{name}: format {layer['format']}, this reader wants csr")
            w = csr_to_dense(tensors[name + ".weight.indptr"], tensors[name + ".weight.indices"],
                             tensors[name + ".weight.values"], rows, cols)
            h = h @ w.T
            if layer["bias"]:
                h = h + tensors[name + ".bias"]
        elif kind == "relu":
            h = np.maximum(h, 0.0)
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:
            raise ValueError(f"{name}: unknown layer type {kind}")
    return h


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    tensors, meta = read_safetensors(sys.argv[1])
    expected, _ = read_safetensors(sys.argv[2])
    if meta.get("format") != "elag-export-1":
        print(f"{sys.argv[1]}: format {meta.get('format')!r}", file=sys.stderr)
        return 1
    got = forward(tensors, meta, expected["inputs"])
    want = expected["logits"].astype(np.float64)
    if got.shape != want.shape:
        print(f"shape {got.shape} != {want.shape}", file=sys.stderr)
        return 1
    err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
    print(f"max relative error {err:.3g} over {want.size} logits")
    if not err <= TOL:
        print(f"mismatch: {err:.3g} > {TOL}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
