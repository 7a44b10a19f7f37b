#!/usr/bin/python3
"""Writes the binary bad inputs of tests/data/bad/ into DIR (standard library only).

usage: make_bad.py DIR

DIR holds good/model.safetensors (a checkpoint of good.yaml), good/model.csr.safetensors
and good/model.bell.safetensors (its CSR and Blocked-ELL block-8 exports), which
tests/test_bad_inputs.c makes with the CLI first. This writes, next to them:

  ckpt/*.safetensors   corrupt checkpoints (header, metadata numbers, tensors)
  exp/*.safetensors    corrupt exports (metadata numbers, shapes, block sizes, arrays)
  idx/<case>/          IDX data folders whose training images or labels are bad
  npy/*                the user's inputs for `infer --inputs`, each bad in one way
  npy-data/<case>/     data.dataset npy folders (train_x.npy ... test_y.npy), one file bad
  config/binary.yaml   a config that is not text

cases.txt names each file and the command that must refuse it. Every file here is
derived from the good files by one change, so a refusal is about that change.
"""
import gzip
import json
import os
import struct
import sys


def read_st(path):
    """(metadata dict, [(name, dtype, shape, bytes)] in data order)."""
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8 : 8 + n])
    data = b[8 + n :]
    meta = header.pop("__metadata__", {})
    tensors = []
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        lo, hi = t["data_offsets"]
        tensors.append([name, t["dtype"], list(t["shape"]), bytearray(data[lo:hi])])
    return meta, tensors


def header_json(meta, tensors):
    h = {}
    if meta is not None:
        h["__metadata__"] = meta
    at = 0
    for name, dtype, shape, data in tensors:
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        at += len(data)
    return json.dumps(h, separators=(",", ":"))


def pack(header_text, tensors):
    hb = header_text.encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(bytes(t[3]) for t in tensors)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def st(path, meta, tensors):
    write(path, pack(header_json(meta, tensors), tensors))


def edit_meta(src, **changes):
    """src's metadata with keys set (None removes one)."""
    meta, tensors = read_st(src)
    for k, v in changes.items():
        k = k.replace("__", ".")
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    return meta, tensors


def find(tensors, name):
    for t in tensors:
        if t[0] == name:
            return t
    raise KeyError(name)


def checkpoints(d):
    good = os.path.join(d, "good", "model.safetensors")
    raw = open(good, "rb").read()
    out = os.path.join(d, "ckpt")
    write(f"{out}/empty.safetensors", b"")
    write(f"{out}/seven-bytes.safetensors", raw[:7])
    write(f"{out}/truncated.safetensors", raw[: len(raw) // 2])
    write(f"{out}/header-length-huge.safetensors", struct.pack("<Q", 1 << 62) + raw[8:])
    write(f"{out}/header-past-end.safetensors", struct.pack("<Q", len(raw)) + raw[8:])
    meta, tensors = read_st(good)
    text = header_json(meta, tensors)
    st_bad = lambda name, h: write(f"{out}/{name}.safetensors", pack(h, tensors))
    st_bad("header-not-json", text[: len(text) // 2])
    st_bad("header-not-object", "[1, 2, 3]")
    st_bad("header-trailing-bytes", text + "xx")
    st_bad("metadata-duplicate-key", text.replace('"format":', '"step":"1","format":', 1)
           .replace('"step":"1"', '"step":"1","step":"2"', 1))
    st_bad("metadata-not-string", text.replace('"classes":"3"', '"classes":3', 1))
    # metadata numbers: range-checked before any cast
    for name, key, value in [
        ("classes-2g", "classes", "2147483648"),
        ("classes-zero", "classes", "0"),
        ("classes-text", "classes", "3x"),
        ("classes-four", "classes", "4"),  # fc2 has 3 outputs
        ("input-dim-wrap", "input_dim", str((1 << 32) + 8)),
        ("input-dim-negative", "input_dim", "-8"),
        ("input-shape-wrap", "input_shape", "[%d, 1, 1]" % ((1 << 32) + 8)),
        ("input-shape-mismatch", "input_shape", "[2, 2, 1]"),
        ("step-negative", "step", "-1"),
        ("epoch-overflow", "epoch", "99999999999999999999"),
        ("format-export", "format", "elag-export-2"),
        ("config-typo", "config", "name: good\ntrian: {epochs: 1}\n"),
        ("config-missing", "config", None),
    ]:
        st(f"{out}/{name}.safetensors", *edit_meta(good, **{key: value}))
    # tensors
    meta, tensors = read_st(good)
    find(tensors, "fc1.weight")[2] = [8, 16]  # transposed: same bytes, wrong shape
    st(f"{out}/tensor-shape.safetensors", meta, tensors)
    meta, tensors = read_st(good)
    find(tensors, "fc1.mask")[3][5] = 2
    st(f"{out}/mask-two.safetensors", meta, tensors)
    meta, tensors = read_st(good)
    find(tensors, "fc2.bias")[1] = "F16"
    st(f"{out}/dtype-f16.safetensors", meta, tensors)
    meta, tensors = read_st(good)
    tensors = [t for t in tensors if t[0] != "fc2.bias"]
    st(f"{out}/tensor-missing.safetensors", meta, tensors)
    meta, tensors = read_st(good)
    h = json.loads(header_json(meta, tensors))
    h["fc1.bias"]["data_offsets"] = h["fc1.weight"]["data_offsets"][:]
    h["fc1.bias"]["shape"] = [16, 8]
    st_bad("offsets-overlap", json.dumps(h))
    h = json.loads(header_json(meta, tensors))
    h["fc2.bias"]["shape"] = [-3]
    st_bad("shape-negative", json.dumps(h))
    h = json.loads(header_json(meta, tensors))
    h["fc2.bias"]["shape"] = [1.5]
    st_bad("shape-fraction", json.dumps(h))
    h = json.loads(header_json(meta, tensors))
    lo, hi = h["fc2.bias"]["data_offsets"]
    h["fc2.bias"]["data_offsets"] = [hi, lo]
    st_bad("offsets-reversed", json.dumps(h))


def exports(d):
    csr = os.path.join(d, "good", "model.csr.safetensors")
    bell = os.path.join(d, "good", "model.bell.safetensors")
    out = os.path.join(d, "exp")
    raw = open(csr, "rb").read()
    write(f"{out}/truncated.safetensors", raw[: len(raw) - 40])
    for name, src, key, value in [
        ("nnz-plus-one", csr, "fc1.weight.nnz", "65"),
        ("nnz-huge", csr, "fc1.weight.nnz", "99999999999"),
        ("nnz-wrap", csr, "fc1.weight.nnz", str((1 << 32) + 64)),
        ("nnz-negative", csr, "fc1.weight.nnz", "-1"),
        ("shape-meta", csr, "fc1.weight.shape", "[16, 9]"),
        ("shape-meta-wrap", csr, "fc1.weight.shape", "[%d, 8]" % ((1 << 32) + 16)),
        ("format-unknown", csr, "fc1.weight.format", "coo"),
        ("format-missing", csr, "fc1.weight.format", None),
        ("classes-2g", csr, "classes", "2147483648"),
        ("input-dim-wrap", csr, "input_dim", str((1 << 32) + 8)),
        ("input-shape-wrap", csr, "input_shape", "[%d, 1, 1]" % ((1 << 32) + 8)),
        ("graph-empty", csr, "graph", "[]"),
        ("format-checkpoint", csr, "format", "elag-checkpoint-1"),
        ("block-zero", bell, "fc1.weight.block", "0"),
        ("block-wrap", bell, "fc1.weight.block", str((1 << 32) + 8)),
        ("block-sixteen", bell, "fc1.weight.block", "16"),
        ("block-text", bell, "fc1.weight.block", "8b"),
    ]:
        st(f"{out}/{name}.safetensors", *edit_meta(src, **{key: value}))
    meta, tensors = read_st(csr)
    ip = find(tensors, "fc1.weight.indptr")[3]
    struct.pack_into("<i", ip, 4 * 3, struct.unpack_from("<i", ip, 4 * 2)[0] - 1)
    st(f"{out}/indptr-decreasing.safetensors", meta, tensors)
    meta, tensors = read_st(csr)
    struct.pack_into("<i", find(tensors, "fc1.weight.indices")[3], 0, 999)
    st(f"{out}/index-out-of-range.safetensors", meta, tensors)
    meta, tensors = read_st(csr)
    tensors.append(["fc3.weight", "F32", [1], bytearray(4)])
    st(f"{out}/tensor-extra.safetensors", meta, tensors)
    meta, tensors = read_st(csr)
    tensors = [t for t in tensors if t[0] != "fc2.bias"]
    st(f"{out}/tensor-missing.safetensors", meta, tensors)
    meta, tensors = read_st(bell)
    struct.pack_into("<i", find(tensors, "fc1.weight.bell_col_ind")[3], 0, 5)
    st(f"{out}/bell-column-out-of-range.safetensors", meta, tensors)


def idx_images(n, rows, cols, pixels):
    return struct.pack(">IIII", 0x803, n, rows, cols) + bytes(pixels)


def idx_labels(n, labels):
    return struct.pack(">II", 0x801, n) + bytes(labels)


def idx(d):
    """Folders of the four Fashion-MNIST file names, 8 images of 2 x 4 pixels (the 8
    features of good.yaml's model), with one file bad."""
    n, rows, cols = 8, 2, 4
    pixels = [(i * 37) % 256 for i in range(n * rows * cols)]
    labels = [i % 3 for i in range(n)]
    good = {
        "train-images-idx3-ubyte": idx_images(n, rows, cols, pixels),
        "train-labels-idx1-ubyte": idx_labels(n, labels),
        "t10k-images-idx3-ubyte": idx_images(n, rows, cols, pixels),
        "t10k-labels-idx1-ubyte": idx_labels(n, labels),
    }
    im, lb = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
    cases = {
        "pixels-truncated": {im: good[im][:-5]},
        # 2^32 - 1 images of 4096 x 4096 (2^58 bytes as floats), labels claiming as many
        "header-claims-more": {im: idx_images(0xFFFFFFFF, 4096, 4096, pixels),
                               lb: idx_labels(0xFFFFFFFF, labels)},
        "header-claims-more-gz": {
            im + ".gz": gzip.compress(idx_images(0xFFFFFFFF, 4096, 4096, pixels)),
            lb + ".gz": gzip.compress(idx_labels(0xFFFFFFFF, labels))},
        "header-short": {im: good[im][:6]},
        "magic-wrong": {im: good[lb]},
        "labels-truncated": {lb: good[lb][:-1]},
        "label-out-of-range": {lb: idx_labels(n, labels[:-1] + [10])},
        "count-mismatch": {lb: idx_labels(n + 1, labels + [0])},
        "zero-rows": {im: idx_images(n, 0, cols, [])},
        "gzip-corrupt": {im + ".gz": gzip.compress(good[im])[:12] + b"\xff" * 40},
    }
    for case, files in cases.items():
        folder = os.path.join(d, "idx", case)
        os.makedirs(folder, exist_ok=True)
        for name, data in good.items():
            if name not in files and name + ".gz" not in files:
                write(os.path.join(folder, name), data)
        for name, data in files.items():
            write(os.path.join(folder, name), data)


def npy_bytes(descr, shape, data, fortran=False, version=1, header=None):
    """A .npy file as numpy writes it (header padded to 64 bytes, '\\n' at its end)."""
    if header is None:
        dims = "".join(f"{n}, " for n in shape) if len(shape) != 1 else f"{shape[0]},"
        header = (f"{{'descr': '{descr}', 'fortran_order': {fortran}, "
                  f"'shape': ({dims.rstrip(', ') if len(shape) > 1 else dims}), }}")
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(header) + 1) % 64) % 64
    h = (header + " " * pad + "\n").encode()
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def i64(values):
    return struct.pack(f"<{len(values)}q", *values)


def npy(d):
    """Inputs for good.yaml's network (8 features, 3 classes) and npy dataset folders."""
    n = 8
    x = [((i * 37) % 19) / 19.0 for i in range(n * 8)]
    out = os.path.join(d, "npy")
    write(f"{out}/inputs-features-7.npy", npy_bytes("<f4", (n, 7), f32(x[: n * 7])))
    write(f"{out}/inputs-int64.npy", npy_bytes("<i8", (n, 8), i64(range(n * 8))))
    write(f"{out}/inputs-fortran.npy", npy_bytes("<f4", (n, 8), f32(x), fortran=True))
    write(f"{out}/inputs-big-endian.npy", npy_bytes(">f4", (n, 8), struct.pack(f">{n * 8}f", *x)))
    write(f"{out}/inputs-truncated.npy", npy_bytes("<f4", (n, 8), f32(x))[:-3])
    write(f"{out}/inputs-trailing.npy", npy_bytes("<f4", (n, 8), f32(x) + b"\0" * 4))
    write(f"{out}/inputs-header-cut.npy", npy_bytes("<f4", (n, 8), f32(x))[:40])
    write(f"{out}/inputs-shape-overflow.npy",
          npy_bytes("<f4", (1 << 40, 1 << 40), f32(x)))
    write(f"{out}/inputs-header-code.npy",
          npy_bytes("<f4", (n, 8), f32(x), header="__import__('os').system('true')"))
    write(f"{out}/inputs-version-9.npy", npy_bytes("<f4", (n, 8), f32(x), version=9))
    write(f"{out}/inputs-scalar.npy", npy_bytes("<f4", (), f32(x[:1]), header=(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (), }")))
    write(f"{out}/inputs-float64-huge.npy",
          npy_bytes("<f8", (1, 8), struct.pack("<8d", 1, 2, 3, 4, 5, 6, 7, 1e300)))
    one = [["x", "F32", [n, 8], bytearray(f32(x))]]
    st(f"{out}/inputs-two-tensors.safetensors", {}, one + [["y", "F32", [1], bytearray(f32([0]))]])
    st(f"{out}/inputs-i64.safetensors", {}, [["x", "I64", [n, 8], bytearray(i64(range(n * 8)))]])
    st(f"{out}/inputs-rank-1.safetensors", {}, [["x", "F32", [n * 8], bytearray(f32(x))]])

    labels = [i % 3 for i in range(n)]
    good = {
        "train_x.npy": npy_bytes("<f4", (n, 8), f32(x)),
        "train_y.npy": npy_bytes("<i8", (n,), i64(labels)),
        "test_x.npy": npy_bytes("<f4", (n, 8), f32(x)),
        "test_y.npy": npy_bytes("<i8", (n,), i64(labels)),
    }
    cases = {
        "count-mismatch": {"train_y.npy": npy_bytes("<i8", (n + 1,), i64(labels + [0]))},
        "labels-float": {"train_y.npy": npy_bytes("<f4", (n,), f32(labels))},
        "label-negative": {"train_y.npy": npy_bytes("<i8", (n,), i64(labels[:-1] + [-1]))},
        "label-huge": {"train_y.npy": npy_bytes("<i8", (n,), i64(labels[:-1] + [1 << 40]))},
        "labels-2d": {"train_y.npy": npy_bytes("<i8", (n, 1), i64(labels))},
        "one-class": {"train_y.npy": npy_bytes("<i8", (n,), i64([0] * n)),
                      "test_y.npy": npy_bytes("<i8", (n,), i64([0] * n))},
        "x-truncated": {"train_x.npy": good["train_x.npy"][:-1]},
        "x-1d": {"train_x.npy": npy_bytes("<f4", (n * 8,), f32(x))},
        "test-y-missing": {"test_y.npy": None},
    }
    for case, files in cases.items():
        folder = os.path.join(d, "npy-data", case)
        os.makedirs(folder, exist_ok=True)
        for name, data in {**good, **files}.items():
            if data is not None:
                write(os.path.join(folder, name), data)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    checkpoints(d)
    exports(d)
    idx(d)
    npy(d)
    write(os.path.join(d, "config", "binary.yaml"), b"\x00\x01\xfe\xffname: x\n\x00")


if __name__ == "__main__":
    main()
