#!/usr/bin/python3
"""Plots `elag bench spmm --json` results: speedup over dense vs sparsity.

One PNG per shape and batch size, one line per (format, device, mask), log-scaled speedup axis,
a line at 1.0 (dense) and, where measured, dense TF32 as a dashed horizontal line. The
crossover sparsity of each line (from the rows) is marked on the 1.0 line: a hollow dot, or a
hollow triangle pointing left where every measured sparsity wins (`crossover_at_most`: the
crossover is there or below); the legend explains both.

    scripts/plot_bench.py OUT_DIR FILE.jsonl [FILE.jsonl ...]    (or - for stdin)

Uses the system interpreter (/usr/bin/python3, Debian's python3-matplotlib): a python3
earlier on PATH (pyenv, a venv) usually has no matplotlib.
"""
import argparse
import json
import os
import re
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

# The same look as scripts/plot.py: one title size, a readable legend, plain tick labels.
TITLE_SIZE = 11
LEGEND_SIZE = 9
plt.rcParams.update({
    "axes.titlesize": TITLE_SIZE,
    "figure.titlesize": TITLE_SIZE,
    "legend.fontsize": LEGEND_SIZE,
    "axes.formatter.useoffset": False,
    "axes.formatter.limits": (-6, 12),
})


def read_rows(paths):
    rows = []
    for path in paths:
        f = sys.stdin if path == "-" else open(path, encoding="utf-8")
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("{"):
                continue  # progress or notes mixed into a log
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit("plot_bench: %s:%d: not JSON: %s" % (path, lineno, e))
        if f is not sys.stdin:
            f.close()
    need = {"shape", "m", "k", "n", "sparsity", "format", "device", "speedup_vs_dense"}
    for r in rows:
        missing = need - r.keys()
        if missing:
            sys.exit("plot_bench: a row lacks %s: %s" % (", ".join(sorted(missing)), r))
    return rows


def safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


def draw_group(shape, n, rows):
    """The figure of one shape and batch size."""
    m, k = rows[0]["m"], rows[0]["k"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.axhline(1.0, color="black", linewidth=1, label="dense FP32 (baseline)")
    lines = defaultdict(list)
    markers_used = set()
    for r in rows:
        if r["format"] == "dense-tf32":
            ax.axhline(r["speedup_vs_dense"], linestyle="--", linewidth=1, color="grey",
                       label="dense TF32 (%s)" % r["device"])
        elif r["format"] != "dense":
            lines[(r["format"], r["device"], r.get("mask", "random"))].append(r)
    for (fmt, device, mask), pts in sorted(lines.items()):
        pts.sort(key=lambda r: r["sparsity"])
        xs = [r["sparsity"] for r in pts]
        ys = [max(r["speedup_vs_dense"], 1e-6) for r in pts]
        label = "%s (%s%s)" % (fmt, device, "" if mask == "random" else ", %s mask" % mask)
        (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=label)
        cross = pts[0].get("crossover_sparsity")
        if isinstance(cross, (int, float)):
            bound = bool(pts[0].get("crossover_at_most"))
            markers_used.add(bound)
            ax.plot([cross], [1.0], marker="<" if bound else "o", color=line.get_color(),
                    markersize=7, markerfacecolor="white", linestyle="none")
    # legend entries for the markers (black: they stand for every line's colour)
    if False in markers_used:
        ax.plot([], [], marker="o", color="black", markerfacecolor="white", linestyle="none",
                label="crossover: sparse = dense")
    if True in markers_used:
        ax.plot([], [], marker="<", color="black", markerfacecolor="white", linestyle="none",
                label="crossover at or below (wins at every sparsity)")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (fraction of zero weights)")
    ax.set_ylabel("speedup over dense (same backend)")
    ax.set_title("%s: W %d x %d, batch %d" % (shape, m, k, n))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def plot_group(out_dir, shape, n, rows):
    fig = draw_group(shape, n, rows)
    path = os.path.join(out_dir, "speedup_%s_n%d.png" % (safe(shape), n))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder for the PNG files (created if missing)")
    ap.add_argument("files", nargs="+", help="JSON-lines files from elag bench spmm --json")
    args = ap.parse_args()
    rows = read_rows(args.files)
    if not rows:
        sys.exit("plot_bench: no rows in %s" % ", ".join(args.files))
    os.makedirs(args.out_dir, exist_ok=True)
    groups = defaultdict(list)
    for r in rows:
        groups[(r["shape"], r["n"])].append(r)
    for (shape, n), group in sorted(groups.items()):
        print(plot_group(args.out_dir, shape, n, group))


if __name__ == "__main__":
    main()
