#!/usr/bin/python3
"""Plots of an elag sweep (called by `elag report DIR`; docs/sweeps.md).

    /usr/bin/python3 scripts/plot.py DIR [--out DIR/report]

Reads DIR/results.jsonl (one row per run id: an ok row wins over a failed one, otherwise
the last row wins; a partial last line is ignored, as in host/sweep/ledger.c) and writes
into the report folder:

  accuracy_vs_sparsity.png   test accuracy per method, mean over seeds with +/- 1 std bars
  throughput_vs_sparsity.png sparse inference samples/s when rows carry infer_* figures
                             (the sweep runner's `elag infer` of the CSR export), else
                             training samples/s (the title says which)
  pareto_accuracy_latency.png accuracy vs sparse inference latency (median per batch) per
                             group, with the Pareto front; training time per sample when
                             no row has infer_latency_ms_median (infer_latency_ms in ledgers
                             from before issue 13)
  masks_<method>.png         mask density heatmaps of one run per method at its highest
                             sparsity, read straight from runs/<id>/model.safetensors

Prints the names of the files it wrote, one a line, on stdout; notes go to stderr.
Exit status 3 (and one line on stderr) when matplotlib or numpy is missing.
"""
import argparse
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError as e:  # the caller turns 3 into "plots skipped"
    print(f"plot.py: {e} (Debian: apt-get install python3-matplotlib)", file=sys.stderr)
    sys.exit(3)

DPI = 100  # small PNGs: 640x400 pixels
FIGSIZE = (6.4, 4.0)
# One look for every figure (scripts/plot_bench.py uses the same): titles of one size, a
# legend that reads at 100 dpi, and plain tick labels: no "1e7" offset or scientific
# notation that leaves the reader to multiply.
TITLE_SIZE = 11
LEGEND_SIZE = 9
plt.rcParams.update({
    "axes.titlesize": TITLE_SIZE,
    "figure.titlesize": TITLE_SIZE,
    "legend.fontsize": LEGEND_SIZE,
    "axes.formatter.useoffset": False,
    "axes.formatter.limits": (-6, 12),
})


def field(row, *names, default=None):
    """The first of names the row has: current names first, then those of older files
    (summary.json's prune_method before it said prune.method; the ledger's
    infer_latency_ms before infer_latency_ms_median)."""
    for n in names:
        if n in row:
            return row[n]
    return default


def read_ledger(path):
    """Rows of a ledger, one per run_id, in order of first appearance."""
    with open(path, "rb") as f:
        data = f.read()
    rows, order = {}, []
    for line in data.split(b"\n")[:-1]:  # what follows the last newline is torn or empty
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or not isinstance(row.get("run_id"), str):
            continue
        rid = row["run_id"]
        old = rows.get(rid)
        if old is None:
            order.append(rid)
        elif old.get("status") == "ok" and row.get("status") != "ok":
            continue
        rows[rid] = row
    return [rows[r] for r in order]


def settings_of(row):
    """The other swept keys (not seed, method, target) as a label."""
    parts = []
    for k in row.get("swept", []):
        if k in ("seed", "prune.method", "prune.target"):
            continue
        v = row.get(k)
        parts.append(f"{k}={v if isinstance(v, str) else json.dumps(v)}")
    return ", ".join(parts)


def group_rows(rows):
    """{(method, settings): {target: [rows]}} for ok rows."""
    groups = {}
    for r in rows:
        if r.get("status") != "ok":
            continue
        method = field(r, "prune.method", "prune_method", default="?")
        target = field(r, "prune.target", "prune_target", "sparsity", default=0.0)
        if method == "none":  # the dense baseline, whatever prune.target a runs: entry left
            target = 0.0
        key = (method, settings_of(r))
        groups.setdefault(key, {}).setdefault(float(target), []).append(r)
    return groups


LATENCY = ("infer_latency_ms_median", "infer_latency_ms")  # the median per batch, new and old


def mean_std(rows, key):
    keys = LATENCY if key in LATENCY else (key,)
    vals = [float(field(r, *keys)) for r in rows if isinstance(field(r, *keys), (int, float))]
    if not vals:
        return math.nan, math.nan
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def label_of(key):
    method, settings = key
    return f"{method} ({settings})" if settings else method


def sparsity_axis(ax, xs):
    """A logit x axis spreads 0.5 ... 0.98 evenly; linear when 0 or 1 is among the points."""
    if xs and all(0 < x < 1 for x in xs):
        ax.set_xscale("logit")
        ax.set_xticks(sorted(set(xs)))
        ax.set_xticklabels([f"{x:g}" for x in sorted(set(xs))])
        ax.minorticks_off()
    ax.set_xlabel("target sparsity (fraction of weights pruned)")


def save(fig, out_dir, name, tight=True):
    if tight:  # a constrained layout (the mask panels) lays itself out
        fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=DPI)
    plt.close(fig)
    print(name)


def plot_accuracy(groups, out_dir):
    fig, ax = plt.subplots(figsize=FIGSIZE)
    xs_all = []
    for key, by_target in groups.items():
        if key[0] == "none":  # dense baseline: a line, not a point at sparsity 0
            m, s = mean_std([r for rs in by_target.values() for r in rs], "test_accuracy")
            ax.axhline(m, ls="--", color="grey", lw=1, label=f"dense {label_of(key)[4:]}".strip()
                       + f" ({m:.4f})")
            continue
        xs = sorted(by_target)
        stats = [mean_std(by_target[x], "test_accuracy") for x in xs]
        ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o",
                    capsize=3, label=label_of(key))
        xs_all += xs
    sparsity_axis(ax, xs_all)
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title("Accuracy vs sparsity")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, out_dir, "accuracy_vs_sparsity.png")


def has_infer(rows):
    return any(isinstance(r.get("infer_samples_per_second"), (int, float)) for r in rows)


def infer_batch(rows):
    """The batch size of the inference figures (the runner times batches of 256)."""
    for r in rows:
        if isinstance(r.get("infer_batch"), (int, float)):
            return int(r["infer_batch"])
    return 256


def plot_throughput(groups, rows, out_dir):
    key_name = "infer_samples_per_second" if has_infer(rows) else "samples_per_second"
    what = "inference" if key_name.startswith("infer") else "training"
    fig, ax = plt.subplots(figsize=FIGSIZE)
    xs_all = []
    for key, by_target in groups.items():
        xs = sorted(by_target)
        stats = [mean_std(by_target[x], key_name) for x in xs]
        ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o",
                    capsize=3, label=label_of(key))
        xs_all += xs
    if all(0 < x < 1 for x in xs_all):
        sparsity_axis(ax, xs_all)
    else:
        ax.set_xlabel("target sparsity (fraction of weights pruned)")
    ax.set_ylabel(f"sparse inference samples/s (CSR, batch {infer_batch(rows)})"
                  if what == "inference" else "training samples/s")
    ax.set_title("Sparse inference throughput vs sparsity" if what == "inference" else
                 "Training throughput vs sparsity (no inference figures in the ledger)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, out_dir, "throughput_vs_sparsity.png")


def plot_pareto(groups, rows, out_dir):
    """Each (method, settings, target) is a point; the front keeps the points that no
    other point beats on both accuracy (higher) and latency (lower)."""
    infer = any(isinstance(field(r, *LATENCY), (int, float)) for r in rows)
    pts = []
    for key, by_target in groups.items():
        for x, rs in by_target.items():
            acc, _ = mean_std(rs, "test_accuracy")
            if infer:
                lat, _ = mean_std(rs, "infer_latency_ms_median")
            else:
                sps, _ = mean_std(rs, "samples_per_second")
                lat = 1e6 / sps if sps and sps > 0 else math.nan
            if not (math.isnan(acc) or math.isnan(lat)):
                pts.append((lat, acc, key, x))
    if not pts:
        return
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for key in groups:
        p = [(l, a) for l, a, k, _ in pts if k == key]
        ax.scatter([l for l, _ in p], [a for _, a in p], label=label_of(key), s=25)
    front, best = [], -math.inf
    for lat, acc, key, x in sorted(pts, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((lat, acc, key, x))
            best = acc
    ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", lw=1,
            label="Pareto front")
    for lat, acc, key, x in front:
        ax.annotate(f"{key[0]} {x:g}", (lat, acc), fontsize=LEGEND_SIZE - 1, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel(f"sparse inference latency, median per batch of {infer_batch(rows)} (ms)"
                  if infer else
                  "training time per sample (µs; no inference figures in the ledger)")
    ax.set_ylabel("test accuracy (mean over seeds)")
    ax.margins(x=0.1)  # room for the labels of the points at the ends
    ax.set_title("Accuracy vs sparse inference latency: Pareto front" if infer else
                 "Accuracy vs latency: Pareto front")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, out_dir, "pareto_accuracy_latency.png")


def read_masks(path):
    """[(name, uint8 array)] of the U8 `<layer>.mask` tensors of a safetensors file:
    8-byte little-endian header length, JSON header, then the raw data."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        masks = []
        for name, info in header.items():
            if name == "__metadata__" or not name.endswith(".mask") or info.get("dtype") != "U8":
                continue
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            arr = np.frombuffer(f.read(end - begin), dtype=np.uint8)
            masks.append((begin, name[: -len(".mask")], arr.reshape(info["shape"])))
    return [(name, arr) for _, name, arr in sorted(masks, key=lambda m: m[0])]


def pooled(mask, max_side=120):
    """Fraction of weights kept in blocks, so a 300x784 mask fits a small image."""
    m = mask.astype(np.float32)
    if m.ndim != 2:
        m = m.reshape(m.shape[0], -1)
    by = max(1, math.ceil(m.shape[0] / max_side))
    bx = max(1, math.ceil(m.shape[1] / max_side))
    h, w = m.shape[0] // by * by, m.shape[1] // bx * bx
    if h == 0 or w == 0:
        return m
    return m[:h, :w].reshape(h // by, by, w // bx, bx).mean(axis=(1, 3))


def plot_masks(dir_, rows, out_dir):
    best = {}
    for r in rows:
        if r.get("status") != "ok":
            continue
        method = field(r, "prune.method", "prune_method", default="?")
        if method == "none":
            continue
        t = float(field(r, "prune.target", "prune_target", "sparsity", default=0.0))
        cand = (t, -float(r.get("seed", 0)) if isinstance(r.get("seed"), (int, float)) else 0)
        if method not in best or cand > best[method][0]:
            best[method] = (cand, r)
    for method, ((t, _), r) in sorted(best.items()):
        path = os.path.join(dir_, "runs", r["run_id"], "model.safetensors")
        if not os.path.exists(path):
            print(f"plot.py: no {path}; mask heatmap of {method} skipped", file=sys.stderr)
            continue
        masks = read_masks(path)
        if not masks:
            continue
        fig, axes = plt.subplots(1, len(masks), figsize=(3.2 * len(masks) + 0.8, 3.4),
                                 squeeze=False, layout="constrained")
        for ax, (name, m) in zip(axes[0], masks):
            rows_, cols = m.shape[0], int(np.prod(m.shape[1:]))
            # extent: the axes count neurons and inputs, whatever the pooling
            im = ax.imshow(pooled(m), cmap="viridis", vmin=0, vmax=1, aspect="auto",
                           interpolation="nearest", extent=(0, cols, rows_, 0))
            ax.set_title(f"{name} {rows_}x{cols}\n{100 * m.mean():.1f}% kept")
            ax.set_xlabel("input")
            ax.set_ylabel("output")
            for axis in (ax.xaxis, ax.yaxis):  # indices are whole numbers
                axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4, integer=True))
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="fraction kept")
        fig.suptitle(f"{method} masks at target sparsity {t:g} (run {r['run_id']})")
        save(fig, out_dir, f"masks_{method}.png", tight=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="sweep output folder (holds results.jsonl and runs/)")
    ap.add_argument("--out", help="where the PNGs go (default DIR/report)")
    args = ap.parse_args()
    out_dir = args.out or os.path.join(args.dir, "report")
    os.makedirs(out_dir, exist_ok=True)
    rows = read_ledger(os.path.join(args.dir, "results.jsonl"))
    groups = group_rows(rows)
    if not groups:
        print("plot.py: no finished runs in the ledger", file=sys.stderr)
        return 0
    plot_accuracy(groups, out_dir)
    plot_throughput(groups, rows, out_dir)
    plot_pareto(groups, rows, out_dir)
    plot_masks(args.dir, rows, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
