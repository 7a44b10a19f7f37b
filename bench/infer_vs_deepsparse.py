#!/usr/bin/env python3
"""Neural Magic DeepSparse on the same weights as an elag MLP checkpoint (issue 12: the
side-by-side inference comparison). Run by bench/infer_vs_deepsparse.sh with the venv's
interpreter (deepsparse==1.8.0 and onnx from PyPI; never a dependency of elag).

  --onnx-out FILE   writes the checkpoint's network as ONNX (Gemm + Relu, the masked weights
                    as they are: pruned entries are 0, so DeepSparse sees the sparsity) with
                    the `onnx` package, then exits
  --onnx FILE       times DeepSparse on FILE: per batch size, the median wall time of
                    engine.run on one random batch over --repeats runs after warm-up; one
                    JSON object per batch size on stdout (runtime "deepsparse", batch,
                    median_ms, samples_per_second)

The checkpoint is read with numpy alone (safetensors: an 8-byte header length, a JSON
header, raw little-endian data). Its layers are taken in the order of the embedded config
(metadata "config", the resolved YAML: the `- {type: linear, name: fc1, ...}` lines) and
must be linear layers with a ReLU between each two (an MLP such as the lenet-300-100
preset)."""
import argparse
import json
import re
import statistics
import struct
import sys
import time

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
    return tensors, meta


def mlp_layers(tensors, meta):
    """[(weight (out, in), bias or None)] in model order."""
    names = re.findall(r"type:\s*linear,\s*name:\s*([A-Za-z0-9_]+)", meta.get("config", ""))
    if not names:  # no embedded config: fc1, fc2, ... by number
        names = sorted({k.split(".")[0] for k in tensors if k.endswith(".weight")},
                       key=lambda s: int(re.sub(r"\D", "", s) or 0))
    if any(f"{n}.weight" not in tensors for n in names):
        sys.exit(f"infer_vs_deepsparse.py: not an MLP checkpoint (layers {names})")
    return [(tensors[f"{n}.weight"], tensors.get(f"{n}.bias")) for n in names]


def write_onnx(layers, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    x = "input"
    for i, (w, b) in enumerate(layers):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w), f"w{i}"))
        ins = [x, f"w{i}"]
        if b is not None:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(b), f"b{i}"))
            ins.append(f"b{i}")
        y = f"gemm{i}" if i + 1 < len(layers) else "logits"
        nodes.append(helper.make_node("Gemm", ins, [y], transB=1))
        if i + 1 < len(layers):
            nodes.append(helper.make_node("Relu", [y], [f"relu{i}"]))
            y = f"relu{i}"
        x = y
    graph = helper.make_graph(
        nodes, "elag_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", layers[0][0].shape[1]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", layers[-1][0].shape[0]])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def time_deepsparse(onnx_path, batches, threads, repeats, warmup):
    from deepsparse import compile_model

    rng = np.random.default_rng(1)
    for b in batches:
        engine = compile_model(onnx_path, batch_size=b, num_cores=threads)
        in_dim = engine.input_shapes[0][1]
        x = [rng.standard_normal((b, in_dim)).astype(np.float32)]
        times = []
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            engine.run(x)
            dt = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                times.append(dt)
        med = statistics.median(times)
        print(json.dumps({"runtime": "deepsparse", "batch": b, "threads": threads,
                          "median_ms": round(med, 5),
                          "samples_per_second": round(b / med * 1e3, 1)}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="elag checkpoint (model.safetensors) for --onnx-out")
    ap.add_argument("--onnx-out")
    ap.add_argument("--onnx")
    ap.add_argument("--batch", default="1,256")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    if a.onnx_out:
        tensors, meta = read_safetensors(a.model)
        write_onnx(mlp_layers(tensors, meta), a.onnx_out)
        return
    time_deepsparse(a.onnx, [int(s) for s in a.batch.split(",")], a.threads, a.repeats,
                    a.warmup)


if __name__ == "__main__":
    main()
