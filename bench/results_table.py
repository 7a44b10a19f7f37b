#!/usr/bin/env python3
"""The results table of docs/results.md from finished sweeps (configs/sweeps/methods.yaml and
methods_vgg.yaml): accuracy, nonzero weights and export size from each sweep's ledger, and
CPU inference timed again here, on a quiet machine, instead of the figures the sweep took
while its other job slot trained.

  bench/results_table.py runs/sweep-methods runs/sweep-methods_vgg [--elag build/elag]
                         [--threads 2] [--rounds 3]

Per run name (a sweep that names its runs, `name` in each `runs:` entry): test accuracy
mean ± sample std over its seeds, points below the sweep's dense run (the name ending in
"dense"), nonzero prunable weights; then, for the run of the lowest seed, the model
exported again here, thinned with every layer in its fastest format (`elag export --thin
--format auto`, timed now rather than during the sweep, which ran next to other jobs): its
formats, its size, and one forward pass timed by `elag bench model` (the file as it is, on
random inputs, median of --repeat) at batch 256 (as samples/s) and batch 1 (latency), with
the speedup over the same model exported dense and unthinned (`elag export --format
dense`), timed alike. Timings alternate over the runs for --rounds rounds and take the
median, so drift in machine load hits all alike. Prints the markdown table on stdout and
every timing as JSON on stderr. Needs only the Python standard library."""
import argparse
import collections
import json
import os
import statistics
import struct
import subprocess
import sys


def ledger(d):
    rows = {}
    with open(os.path.join(d, "results.jsonl")) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if r.get("status") == "ok" or r.get("run_id") not in rows:
                rows[r.get("run_id")] = r
    return [r for r in rows.values() if r.get("status") == "ok"]


def forward_ms(elag, path, batch, threads, repeat):
    """Median ms of one forward pass of the file as it is (`elag bench model`'s sparse side:
    the file's own formats; on random inputs, after warm-up)."""
    out = subprocess.run([elag, "bench", "model", path, "--batch", str(batch), "--threads",
                          str(threads), "--device", "cpu", "--repeat", str(repeat), "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"results_table.py: elag bench model {path} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.splitlines()[-1])["sparse_ms_median"]


def formats(path):
    """The export's per-layer formats, in file order, from the metadata elag export writes
    (`<tensor>.format`)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header.get("__metadata__", {})
    return ",".join(v for k, v in meta.items() if k.endswith(".format")) or "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--elag", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                   "elag"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=50, help="forwards per timing")
    ap.add_argument("--export", default="thin,auto",
                    help="thin,auto (default) or an `elag export --format` word")
    a = ap.parse_args()

    groups = collections.OrderedDict()  # (dir, name) -> rows
    for d in a.dirs:
        for r in ledger(d):
            groups.setdefault((d, r.get("name", "?")), []).append(r)
    timed = []  # (key, export path, dense export path)
    for (d, name), rows in groups.items():
        first = min(rows, key=lambda r: r.get("seed", 0))
        run = os.path.join(d, "runs", first["run_id"])
        model = os.path.join(run, "model.safetensors")
        # exported again here: `auto` times each layer's formats, and the sweep did that while
        # its other job slot trained (it then picks CSR for a dense layer, say)
        exp = os.path.join(run, "model.results.safetensors")
        dense = os.path.join(run, "model.unthinned-dense.safetensors")
        export_args = ["--thin", "--format", "auto"] if a.export == "thin,auto" else \
            ["--format", a.export]
        for out, args in ((exp, export_args), (dense, ["--format", "dense"])):
            subprocess.run([a.elag, "export", model, *args, "--device", "cpu", "--threads",
                            str(a.threads), "-o", out, "--force"], check=True,
                           capture_output=True)
        timed.append(((d, name), exp, dense))

    times = collections.defaultdict(list)  # (key, which, batch) -> [(sps, ms)]
    for _ in range(a.rounds):
        for key, exp, dense in timed:
            for which, path in (("export", exp), ("dense", dense)):
                for batch in (256, 1):
                    ms = forward_ms(a.elag, path, batch, a.threads, a.repeat)
                    times[(key, which, batch)].append((batch / ms * 1e3, ms))
                    print(json.dumps({"sweep": key[0], "run": key[1], "file": which,
                                      "batch": batch, "ms_median": ms}), file=sys.stderr)

    def med(key, which, batch, k):
        return statistics.median(t[k] for t in times[(key, which, batch)])

    print("| sweep | run | seeds | test accuracy | points below dense | nonzero weights | formats "
          "| export file | samples/s, batch 256 | vs dense export | latency, batch 1 | vs dense "
          "export |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    base = {}
    for (d, name), rows in groups.items():
        if name.endswith("dense"):
            base[d] = statistics.mean(r["test_accuracy"] for r in rows)
    for key, exp, dense in timed:
        d, name = key
        rows = groups[key]
        accs = [r["test_accuracy"] for r in rows]
        acc = statistics.mean(accs)
        sd = statistics.stdev(accs) if len(accs) > 1 else None
        acc_s = f"{acc:.4f} ± {sd:.4f}" if sd is not None else f"{acc:.4f}"
        gap = "" if name.endswith("dense") or d not in base else f"{(base[d] - acc) * 100:.2f}"
        nz = statistics.mean(r["params_nonzero"] for r in rows)
        total = rows[0]["params_prunable"]
        size = os.path.getsize(exp)
        sps, sps_d = med(key, "export", 256, 0), med(key, "dense", 256, 0)
        lat, lat_d = med(key, "export", 1, 1), med(key, "dense", 1, 1)
        print(f"| {os.path.basename(d.rstrip('/'))} | {name} | {len(rows)} | {acc_s} | {gap} | "
              f"{nz:,.0f} / {total:,} | {formats(exp)} | {size / 1e3:,.1f} kB | "
              f"{sps:,.0f} | {sps / sps_d:.2f}x | {lat:.4f} ms | {lat_d / lat:.2f}x |")


if __name__ == "__main__":
    main()
