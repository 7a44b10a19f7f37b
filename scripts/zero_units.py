#!/usr/bin/python3
"""Zero the weakest output units of chosen layers of an elag checkpoint (numpy only).

    scripts/zero_units.py IN OUT --layers fc1,fc2 --fraction 0.5

For each named linear or conv2d layer, the `fraction` of its output units (rows of
`<layer>.weight`, a neuron or a conv filter) with the smallest L2 norm get their weight
row, mask row and optimizer-state rows set to zero: the checkpoint then holds what a
structured (neuron / channel) pruning of that layer would leave, for `elag export --thin`
to remove (docs/sparse.md, "Thinning"). Biases and batch norms are left alone. The file
is otherwise copied byte for byte (header, metadata, other tensors).
"""
import argparse
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "U8": np.uint8, "I32": np.int32}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--layers", required=True, help="comma-separated layer names")
    ap.add_argument("--fraction", type=float, default=0.5)
    a = ap.parse_args()
    if not 0.0 <= a.fraction < 1.0:
        sys.exit("zero_units.py: --fraction must be in [0, 1)")
    raw = bytearray(open(a.src, "rb").read())
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hlen])
    base = 8 + hlen

    def tensor(name):
        t = header.get(name)
        if t is None:
            return None
        lo, hi = t["data_offsets"]
        arr = np.frombuffer(raw, dtype=DTYPES[t["dtype"]], count=int(np.prod(t["shape"])),
                            offset=base + lo)
        return arr.reshape(t["shape"][0], -1)

    for layer in a.layers.split(","):
        w = tensor(layer + ".weight")
        if w is None:
            sys.exit("zero_units.py: %s has no tensor %s.weight" % (a.src, layer))
        rows = w.shape[0]
        k = int(round(a.fraction * rows))
        order = np.argsort(np.linalg.norm(w.astype(np.float64), axis=1), kind="stable")
        drop = np.sort(order[:k])
        for suffix in (".weight", ".mask", ".weight.momentum", ".weight.exp_avg",
                       ".weight.exp_avg_sq"):
            t = tensor(layer + suffix)
            if t is not None:
                t = t.copy()
                t[drop] = 0
                lo = header[layer + suffix]["data_offsets"][0]
                raw[base + lo : base + lo + t.nbytes] = t.tobytes()
        print("%s: zeroed %d of %d units" % (layer, k, rows))
    open(a.dst, "wb").write(raw)


if __name__ == "__main__":
    main()
