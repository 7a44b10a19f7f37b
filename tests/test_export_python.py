#!/usr/bin/python3
"""Reads an elag CSR export with numpy only and reproduces elag's logits.

    test_export_python.py EXPORT EXPECTED

EXPORT is a file written by `elag export --format csr`; EXPECTED is a safetensors file
with "inputs" (k, input_dim) and "logits" (k, classes), both F32, that elag computed.
The safetensors container is parsed by hand (8-byte little-endian header length, JSON
header, raw little-endian data), the network is rebuilt from the "graph" metadata (the
layer kinds, their in/out shapes) and the config's layer keys (kernels, strides, padding),
in PyTorch's NCHW conventions, and the logits must agree with elag's within
max |a - b| / max(1, |b|) <= 1e-4.
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


def layer_keys(meta):
    """Each layer's keys from the config's `- {type: ..., name: "x", kernel: [3, 3], ...}`
    lines (flow mappings of plain scalars and [a, b] pairs, as elag writes them)."""
    keys = {}
    for line in meta["config"].splitlines():
        line = line.strip()
        if not (line.startswith("- {") and line.endswith("}")):
            continue
        body = line[3:-1]
        items, depth, cur = [], 0, ""
        for ch in body:
            depth += ch == "["
            depth -= ch == "]"
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        items.append(cur)
        kv = {}
        for item in items:
            k, v = item.split(":", 1)
            v = v.strip()
            kv[k.strip()] = json.loads(v) if v.startswith("[") else v.strip('"')
        keys[kv["name"]] = kv
    return keys


def weight(tensors, meta, name, shape):
    rows = shape[0]
    cols = int(np.prod(shape[1:]))
    fmt = meta[name + ".weight.format"]
    if fmt == "csr":
        w = csr_to_dense(tensors[name + ".weight.indptr"], tensors[name + ".weight.indices"],
                         tensors[name + ".weight.values"], rows, cols)
    elif fmt == "dense":
        w = tensors[name + ".weight"].astype(np.float64)
    else:
        raise ValueError(f"{name}: format {fmt}, this reader wants csr or dense")
    return w.reshape(shape)


def windows(h, kh, kw, sh, sw, ph, pw, fill):
    """(n, c, oh, ow, kh, kw) windows of h (n, c, H, W) padded with `fill`."""
    h = np.pad(h, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    n, c, H, W = h.shape
    oh, ow = (H - kh) // sh + 1, (W - kw) // sw + 1
    out = np.empty((n, c, oh, ow, kh, kw))
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, :, i, j] = h[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    return out


def forward(tensors, meta, x):
    graph = json.loads(meta["graph"])
    keys = layer_keys(meta)
    c, hh, ww = json.loads(meta["input_shape"])
    h = x.astype(np.float64).reshape(x.shape[0], c, hh, ww)
    if not any(layer["type"] in ("conv2d", "maxpool", "avgpool", "global_avgpool")
               for layer in graph):
        h = h.reshape(h.shape[0], -1)  # an MLP takes its input flat
    for layer in graph:
        name, kind = layer["name"], layer["type"]
        k = keys[name]
        if kind == "linear":
            w = weight(tensors, meta, name, json.loads(meta[name + ".weight.shape"]))
            h = h @ w.T
            if layer["bias"]:
                h = h + tensors[name + ".bias"]
        elif kind == "conv2d":
            shape = json.loads(meta[name + ".weight.shape"])
            w = weight(tensors, meta, name, shape)
            (kh, kw), (sh, sw), (ph, pw) = k["kernel"], k["stride"], k["padding"]
            win = windows(h, kh, kw, sh, sw, ph, pw, 0.0)
            h = np.einsum("ncyxij,ocij->noyx", win, w)
            if layer["bias"]:
                h = h + tensors[name + ".bias"][None, :, None, None]
        elif kind in ("maxpool", "avgpool"):
            (kh, kw), (sh, sw), (ph, pw) = k["kernel"], k["stride"], k["padding"]
            if kind == "maxpool":
                h = windows(h, kh, kw, sh, sw, ph, pw, -np.inf).max(axis=(4, 5))
            else:
                h = windows(h, kh, kw, sh, sw, ph, pw, 0.0).sum(axis=(4, 5)) / (kh * kw)
        elif kind == "global_avgpool":
            h = h.mean(axis=(2, 3), keepdims=True)
        elif kind == "batchnorm":
            g, b = tensors[name + ".weight"], tensors[name + ".bias"]
            mean, var = tensors[name + ".running_mean"], tensors[name + ".running_var"]
            shape = (1, -1) + (1,) * (h.ndim - 2)
            h = (h - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + float(k["eps"]))
            h = h * g.reshape(shape) + b.reshape(shape)
        elif kind == "relu":
            h = np.maximum(h, 0.0)
        elif kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:
            raise ValueError(f"{name}: unknown layer type {kind}")
    return h.reshape(h.shape[0], -1)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    tensors, meta = read_safetensors(sys.argv[1])
    expected, _ = read_safetensors(sys.argv[2])
    if meta.get("format") != "elag-export-2":
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
