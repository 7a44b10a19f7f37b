#!/usr/bin/env python3
"""ONNX Runtime against elag (tests/test_onnx_runtime.c; docs/onnx.md).

usage: onnx_check.py MODEL.onnx EXPECTED.safetensors ELAG_EVAL_ACCURACY

EXPECTED holds "inputs" F32 (n, features), normalised as elag's data config does,
"labels" I32 (n) and "logits" F32 (n, classes): what elag computed for those inputs.
Runs MODEL in onnxruntime (CPU) and checks
  - the largest |ort - elag| / max(1, |elag|) over every logit is at most 1e-4
    (elag's own bound for two FP32 evaluations of the same weights, ELAG_INFER_VERIFY_TOL);
  - the test accuracy of ort's predictions is within 0.002 of ELAG_EVAL_ACCURACY, the
    accuracy `elag eval` reports for the checkpoint.
Prints one JSON line with the figures; exit 0 when both hold, 1 otherwise.
"""
import json
import struct
import sys

import numpy as np
import onnxruntime as ort

LOGIT_TOL = 1e-4
ACCURACY_TOL = 0.002


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "I32": np.int32}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(blob[base + a : base + b], dtype=dtypes[t["dtype"]]).reshape(
            t["shape"]
        )
    return out


def main():
    model, expected, elag_accuracy = sys.argv[1], sys.argv[2], float(sys.argv[3])
    want = read_safetensors(expected)
    x, y, ref = want["inputs"], want["labels"], want["logits"]
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [x.shape[0]] + [int(d) for d in inp.shape[1:]]
    got = np.concatenate(
        [
            sess.run(None, {inp.name: x[i : i + 1000].reshape([-1] + shape[1:])})[0]
            for i in range(0, x.shape[0], 1000)
        ]
    )
    rel = float(np.max(np.abs(got - ref) / np.maximum(1.0, np.abs(ref))))
    accuracy = float(np.mean(np.argmax(got, axis=1) == y))
    ok = rel <= LOGIT_TOL and abs(accuracy - elag_accuracy) <= ACCURACY_TOL
    print(
        json.dumps(
            {
                "samples": int(x.shape[0]),
                "max_rel_logit_error": rel,
                "ort_accuracy": accuracy,
                "elag_eval_accuracy": elag_accuracy,
                "ok": ok,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
