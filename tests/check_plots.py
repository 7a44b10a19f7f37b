#!/usr/bin/python3
"""Checks the look of the plots of scripts/plot.py and scripts/plot_bench.py (issue 13):

    check_plots.py WORKDIR

draws every figure from made-up rows (throughputs near 1e7, masks of odd sizes, crossovers
that are points and bounds) with saving replaced by collecting the figures, then checks:
every title and figure title has one size; every legend's text is at least 9 points; no
axis shows an offset or scientific multiplier ("1e7"); the mask panels' ticks are whole
numbers; the bench plot's legend explains its crossover markers; the ledger's current
names (prune.method, infer_latency_ms_median) and the old ones (prune_method,
infer_latency_ms) both give a latency Pareto plot. Exit 0 when all hold, 1 otherwise.
"""
import importlib.util
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "scripts")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_masks(path, shapes):
    """A safetensors file with U8 masks <layer>.mask of the given shapes, half kept."""
    header, data = {}, b""
    for i, shape in enumerate(shapes):
        n = 1
        for d in shape:
            n *= d
        blob = bytes((j * 7 + i) % 2 for j in range(n))
        header[f"fc{i + 1}.mask"] = {"dtype": "U8", "shape": list(shape),
                                     "data_offsets": [len(data), len(data) + n]}
        data += blob
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def ledger_rows(old_names):
    rows = []
    for i, (method, target) in enumerate([("gmp", 0.5), ("gmp", 0.9), ("oneshot", 0.9),
                                          ("none", 0.0)]):
        r = {"run_id": f"{i:012d}", "status": "ok", "seed": 1, "test_accuracy": 0.8 - 0.1 * i,
             "samples_per_second": 1.2e7 + 1e5 * i, "swept": ["prune.method", "prune.target"],
             "infer_samples_per_second": 2.5e7 - 1e6 * i}
        lat = 0.5 + 0.1 * i
        if old_names:
            r.update({"prune_method": method, "prune_target": target, "infer_latency_ms": lat})
        else:
            r.update({"prune.method": method, "prune.target": target,
                      "infer_latency_ms_median": lat})
        rows.append(r)
    return rows


def main():
    work = sys.argv[1]
    import matplotlib

    # each script sets its own look: load (and draw) each on matplotlib's defaults
    matplotlib.rcdefaults()
    plot = load("plot")
    figs = []
    plot.save = lambda fig, out_dir, name, tight=True: figs.append((name, fig))
    problems = []
    for old in (False, True):
        rows = ledger_rows(old)
        for r in rows:
            os.makedirs(os.path.join(work, "runs", r["run_id"]), exist_ok=True)
            write_masks(os.path.join(work, "runs", r["run_id"], "model.safetensors"),
                        [(37, 53), (11, 37), (3, 11)])
        groups = plot.group_rows(rows)
        if ("gmp", "") not in groups:
            problems.append(f"old names {old}: no gmp group in {list(groups)}")
        n = len(figs)
        plot.plot_accuracy(groups, work)
        plot.plot_throughput(groups, rows, work)
        plot.plot_pareto(groups, rows, work)
        plot.plot_masks(work, rows, work)
        names = [name for name, _ in figs[n:]]
        for want in ("pareto_accuracy_latency.png", "masks_gmp.png"):
            if want not in names:
                problems.append(f"old names {old}: {want} not drawn ({names})")
        pareto = [f for name, f in figs[n:] if name.startswith("pareto")]
        if pareto and "inference latency" not in pareto[0].axes[0].get_xlabel():
            problems.append(f"old names {old}: the Pareto plot lost the inference latency")
    problems += look(figs)
    matplotlib.rcdefaults()
    bench = load("plot_bench")
    bench_rows = [
        {"shape": "s", "m": 64, "k": 64, "n": 8, "sparsity": s, "format": f, "device": "cpu",
         "speedup_vs_dense": sp, "crossover_sparsity": c, "crossover_at_most": b}
        for f, c, b, pts in (("csr", 0.75, False, ((0.5, 0.6), (0.9, 3.0))),
                             ("bell:16", 0.5, True, ((0.5, 1.5), (0.9, 9.0))))
        for s, sp in pts]
    bench_rows.append({"shape": "s", "m": 64, "k": 64, "n": 8, "sparsity": 0.5,
                       "format": "dense", "device": "cpu", "speedup_vs_dense": 1.0})
    bfig = bench.draw_group("s", 8, bench_rows)
    problems += look([("bench", bfig)])
    labels = [t.get_text() for t in bfig.axes[0].get_legend().get_texts()]
    for want in ("crossover: sparse = dense", "crossover at or below"):
        if not any(want in t for t in labels):
            problems.append(f"bench legend lacks '{want}': {labels}")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(figs) + 1} figures checked, {len(problems)} problems")
    return 1 if problems else 0


TITLE_SIZES = set()  # over both scripts: one size everywhere


def look(figs):
    """What is wrong with the look of figs [(name, figure)]."""
    problems = []
    sizes = TITLE_SIZES
    for name, fig in figs:
        fig.canvas.draw()  # tick labels and offsets exist only once drawn
        if fig._suptitle is not None:
            sizes.add((fig._suptitle.get_fontsize(), name))
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            if ax.get_title():
                sizes.add((ax.title.get_fontsize(), name))
            leg = ax.get_legend()
            for t in leg.get_texts() if leg else []:
                if t.get_fontsize() < 9:
                    problems.append(f"{name}: legend text '{t.get_text()}' at "
                                    f"{t.get_fontsize()} pt")
            for axis in (ax.xaxis, ax.yaxis):
                off = axis.get_offset_text().get_text()
                if off:
                    problems.append(f"{name}: an axis shows the offset '{off}'")
            if name.startswith("masks"):
                for t in ax.get_xticklabels() + ax.get_yticklabels():
                    text = t.get_text().replace("\u2212", "-")
                    if text and not text.lstrip("-").isdigit():
                        problems.append(f"{name}: mask tick '{text}' is not a whole number")
    if len({s for s, _ in sizes}) != 1:
        problems.append(f"titles of different sizes: {sorted(sizes)}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
