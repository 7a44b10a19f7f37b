#!/usr/bin/python3
"""PyTorch twin of an elag training config, the baseline for bench/train_vs_torch.sh.

Reads an elag config file (default configs/fashion_mlp_gmp.yaml), builds the same network
from its model.layers, trains it on Fashion-MNIST on the CPU with the same batch, optimizer,
LR schedule and pruning schedule, and prints one JSON line with the training throughput.
Everything that is not training (reading the data set, the final test evaluation) is outside
the timed region, exactly as elag's summary.json counts it, so the two samples_per_second
figures measure the same work. The benchmark hands it the resolved config that elag's own run
of the same config wrote (runs/<name>/config.yaml: every key, presets expanded into
model.layers, --set overrides applied), so both sides read one description of the network.

  network    model.layers in order. linear -> Linear (a linear layer that gets a (C, H, W)
             input flattens it first), conv2d -> Conv2d, maxpool/avgpool -> MaxPool2d/AvgPool2d,
             global_avgpool -> mean over H and W, batchnorm -> BatchNorm2d on (C, H, W) and
             BatchNorm1d on features (momentum as in PyTorch), dropout -> Dropout, relu, flatten.
             A config with only model.preset works for lenet-300-100; for any other preset give
             the resolved config an elag run wrote. Softmax cross-entropy loss.
  data       x/255, normalised with data.mean, data.std (default 0.2860, 0.3530), held in
             memory as one tensor: (N, 784) for a network of linear layers only, (N, 1, 28, 28)
             when it has a conv2d or pooling layer; a fresh torch.randperm per epoch; batches
             gathered by index (no DataLoader); the last partial batch is kept; data.train_limit,
             data.test_limit and data.val_split (the tail held out, not trained on) as in elag
  seed       the config's (initial weights still differ: torch's default init)
  optimizer  train.optimizer: SGD (lr, momentum, weight_decay, nesterov) or AdamW (lr, betas,
             eps, weight_decay), over every parameter
  LR         train.lr_schedule (constant, step, cosine to min_lr at the last step, linear
             warm-up), set on the param group before every step, as elag's elag_lr_at computes it
  pruning    prune.method none, oneshot or gmp, magnitude, layer or global scope, on the weights
             of the prunable conv2d and linear layers through torch.nn.utils.prune; GMP schedule
             s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^e with t0 = prune.start, the end at
             prune.end (fractions of all steps rounded half away from zero), dt = frequency,
             n = floor((end - t0)/dt); masks recomputed before the forward pass of steps
             t0 + j dt, j = 0..n (steps counted from 0), so each weight tensor of n entries (all
             of them, in global scope) holds exactly round(s_t n) zeros; biases unpruned

For configs/fashion_mlp_gmp.yaml that is LeNet-300-100 (Linear(784,300) ReLU Linear(300,100) ReLU
Linear(100,10)), SGD lr 0.05, momentum 0.9, weight decay 5e-4, cosine LR to 0, GMP 0 -> 0.9 in
layer scope from 10% to 70% of training every 100 steps.

Run it with the system interpreter, which has Debian's python3-torch, numpy and yaml:
  /usr/bin/python3 bench/torch_train.py [--config FILE] [--epochs N] [--threads 2]
                                        [--train-limit N] [--describe]
--describe prints the network (each layer's output shape and parameters) and one JSON line
with the input and output shapes and parameter counts, and trains nothing.
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune

try:
    import yaml
except ImportError:
    sys.exit("torch_train.py: PyYAML is missing for " + sys.executable +
             " (Debian: apt-get install python3-yaml)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "fashion_mlp_gmp.yaml")
PRESETS = {
    "lenet-300-100": [
        {"type": "linear", "name": "fc1", "out_features": 300},
        {"type": "relu", "name": "relu1"},
        {"type": "linear", "name": "fc2", "out_features": 100},
        {"type": "relu", "name": "relu2"},
        {"type": "linear", "name": "fc3", "out_features": 10},
    ],
}
SPATIAL = {"conv2d", "maxpool", "avgpool", "global_avgpool"}
LAYER_KEYS = {
    "conv2d": {"out_channels", "kernel", "stride", "padding", "bias", "prunable"},
    "maxpool": {"kernel", "stride", "padding"},
    "avgpool": {"kernel", "stride", "padding"},
    "global_avgpool": set(),
    "batchnorm": {"momentum", "eps"},
    "dropout": {"p"},
    "relu": set(),
    "flatten": set(),
    "linear": {"out_features", "bias", "prunable"},
}


class ConfigError(Exception):
    pass


def c_round(x):
    """Round half away from zero, like C's round(); Python's round() rounds half to even."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# ---- the config -------------------------------------------------------------------------------

class Config:
    """An elag config as PyYAML reads it, looked up by dotted key with elag's defaults."""

    def __init__(self, path):
        self.path = path
        with open(path) as f:
            self.tree = yaml.safe_load(f) or {}
        if not isinstance(self.tree, dict):
            raise ConfigError(f"{path}: not a mapping of keys")

    def raw(self, key, default=None):
        node = self.tree
        for part in key.split("."):
            if not isinstance(node, dict) or node.get(part) is None:
                return default
            node = node[part]
        return node

    def num(self, key, default):
        return to_num(self.raw(key, default), key, self.path)

    def int(self, key, default):
        return to_int(self.raw(key, default), key, self.path)

    def bool(self, key, default):
        return to_bool(self.raw(key, default), key, self.path)

    def str(self, key, default):
        return str(self.raw(key, default))

    def when(self, key, default):
        """elag's 'when': an integer is a step number, a value with '.' or an exponent is a
        fraction of all steps. Returns (value, is_fraction)."""
        v = self.raw(key, default)
        if isinstance(v, bool):
            raise ConfigError(f"{self.path}: '{key}' expects a step or a fraction, got {v}")
        if isinstance(v, int):
            return v, False
        if isinstance(v, float):
            return v, True
        s = str(v).strip()
        if any(c in s for c in ".eE"):
            return to_num(s, key, self.path), True
        return to_int(s, key, self.path), False


# PyYAML reads YAML 1.1, where '1e-05' (no '.') is a string, not a number, and elag writes such
# numbers in its resolved configs, so every number goes through float().
def to_num(v, key, where):
    if isinstance(v, bool):
        raise ConfigError(f"{where}: '{key}' expects a number, got {v}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: '{key}' expects a number, got {v!r}") from None


def to_int(v, key, where):
    if isinstance(v, bool) or isinstance(v, float):
        raise ConfigError(f"{where}: '{key}' expects an integer, got {v!r}")
    try:
        return int(str(v), 10)
    except ValueError:
        raise ConfigError(f"{where}: '{key}' expects an integer, got {v!r}") from None


def to_bool(v, key, where):
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    s = str(v).lower()
    if s in ("true", "yes", "on", "1"):
        return True
    if s in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{where}: '{key}' expects a boolean, got {v!r}")


def choice(cfg, key, default, allowed):
    v = cfg.str(key, default)
    if v not in allowed:
        raise ConfigError(f"{cfg.path}: '{key}' is '{v}'; this twin mirrors only "
                          f"{', '.join(allowed)}")
    return v


def layer_list(cfg):
    layers = cfg.raw("model.layers")
    if layers is not None:
        if not isinstance(layers, list) or not layers:
            raise ConfigError(f"{cfg.path}: 'model.layers' must be a non-empty list")
        return layers
    preset = cfg.str("model.preset", "lenet-300-100")
    if preset not in PRESETS:
        raise ConfigError(
            f"{cfg.path}: model.preset '{preset}' without model.layers: this script expands only "
            f"{', '.join(PRESETS)}; give it the resolved config an elag run of this config wrote "
            f"(runs/<name>/config.yaml lists the preset's layers), as bench/train_vs_torch.sh does")
    return PRESETS[preset]


# ---- the network ------------------------------------------------------------------------------

class GlobalAvgPool(torch.nn.Module):
    """(N, C, H, W) -> (N, C): the mean over each channel's H x W."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def pair(v, key, where):
    if isinstance(v, list):
        if len(v) != 2:
            raise ConfigError(f"{where}: '{key}' expects an integer or a list of 2, got {v!r}")
        return tuple(to_int(x, key, where) for x in v)
    n = to_int(v, key, where)
    return (n, n)


def shape_str(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def build_model(layers, in_shape, where):
    """Returns (model, prunable modules, description rows). Shapes are traced by running a
    zero tensor through each module as it is built (eval mode, no RNG drawn), so the modules
    are created in config order and take the same initial weights as a hand-written twin."""
    mods, prunable, rows = [], [], []
    counts = {}
    x = torch.zeros((1,) + tuple(in_shape))
    for i, spec in enumerate(layers):
        at = f"{where}: model.layers[{i}]"
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(f"{at}: expects a mapping with a 'type'")
        t = str(spec["type"])
        if t not in LAYER_KEYS:
            raise ConfigError(f"{at}: layer type '{t}' is not mirrored here "
                              f"({', '.join(LAYER_KEYS)})")
        extra = set(spec) - LAYER_KEYS[t] - {"type", "name"}
        if extra:
            raise ConfigError(f"{at}: key(s) {', '.join(sorted(extra))} not expected for {t}")
        counts[t] = counts.get(t, 0) + 1
        name = str(spec.get("name") or f"{'fc' if t == 'linear' else t}{counts[t]}")

        def get(key, default=None, conv=None, _spec=spec, _at=at):
            v = _spec.get(key)
            if v is None:
                if default is None:
                    raise ConfigError(f"{_at}: '{key}' is required for {_spec['type']}")
                return default
            return conv(v, key, _at) if conv else v

        new = []
        is_prunable = False
        if t == "linear":
            if x.dim() > 2:
                new.append(torch.nn.Flatten())
                x = new[-1](x)
            m = torch.nn.Linear(x.shape[1], get("out_features", conv=to_int),
                                bias=get("bias", True, to_bool))
            is_prunable = get("prunable", True, to_bool)
        elif t == "conv2d":
            if x.dim() != 4:
                raise ConfigError(f"{at}: conv2d needs a (C, H, W) input, gets {shape_str(x.shape[1:])}")
            m = torch.nn.Conv2d(x.shape[1], get("out_channels", conv=to_int),
                                kernel_size=get("kernel", conv=pair), stride=get("stride", 1, pair),
                                padding=get("padding", 0, pair), bias=get("bias", True, to_bool))
            is_prunable = get("prunable", True, to_bool)
        elif t in ("maxpool", "avgpool"):
            if x.dim() != 4:
                raise ConfigError(f"{at}: {t} needs a (C, H, W) input, gets {shape_str(x.shape[1:])}")
            k = get("kernel", conv=pair)
            stride = get("stride", k, pair)
            if stride == (0, 0):  # 0 as "unset", as elag writes other unset integers
                stride = k
            cls = torch.nn.MaxPool2d if t == "maxpool" else torch.nn.AvgPool2d
            m = cls(k, stride=stride, padding=get("padding", 0, pair))
        elif t == "global_avgpool":
            if x.dim() != 4:
                raise ConfigError(f"{at}: global_avgpool needs a (C, H, W) input, "
                                  f"gets {shape_str(x.shape[1:])}")
            m = GlobalAvgPool()
        elif t == "batchnorm":
            cls = torch.nn.BatchNorm2d if x.dim() == 4 else torch.nn.BatchNorm1d
            m = cls(x.shape[1], eps=get("eps", 1e-5, to_num), momentum=get("momentum", 0.1, to_num))
        elif t == "dropout":
            m = torch.nn.Dropout(get("p", conv=to_num))
        elif t == "relu":
            m = torch.nn.ReLU()
        else:  # flatten
            m = torch.nn.Flatten()
        new.append(m)
        m.eval()
        with torch.no_grad():
            try:
                x = m(x)
            except RuntimeError as e:
                raise ConfigError(f"{at} ({t} '{name}'): {e}") from None
        if is_prunable:
            prunable.append((name, m))
        mods += new
        rows.append({"name": name, "type": t, "output": list(x.shape[1:]),
                     "params": sum(p.numel() for p in m.parameters()),
                     "prunable": m.weight.numel() if is_prunable else 0})
    model = torch.nn.Sequential(*mods)
    model.train()
    return model, prunable, rows


# ---- data -------------------------------------------------------------------------------------

def read_idx(path):
    """Read an IDX file (big-endian header: magic, dims), gzip'ed or not, into uint8 numpy."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def idx_path(data_dir, base):
    for p in (os.path.join(data_dir, base + ".gz"), os.path.join(data_dir, base)):
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{data_dir}/{base}.gz not found (Debian: apt-get install "
                            "dataset-fashion-mnist)")


def load(data_dir, split, limit, images, norm):
    """Return (x, y): x float32, (N, 784) or (N, 1, H, W), normalised; y int64 (N,)."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(idx_path(data_dir, f"{prefix}-images-idx3-ubyte"))
    y = read_idx(idx_path(data_dir, f"{prefix}-labels-idx1-ubyte"))
    if limit:
        x, y = x[:limit], y[:limit]
    shape = (len(x), 1) + x.shape[1:] if images else (len(x), -1)
    x = torch.from_numpy(x.reshape(shape).astype(np.float32))
    x = (x / 255.0 - norm[0]) / norm[1] if norm else x / 255.0
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


# ---- schedules (elag's host/train/lr_schedule.c and host/prune/schedule.c) ---------------------

def lr_at(cfg_lr, t, total):
    base, kind, warm, step_size, gamma, lo = cfg_lr
    if warm > 0 and t < warm:
        return base * (t + 1) / warm
    u = t - (warm if warm > 0 else 0)
    if kind == "constant":
        return base
    if kind == "step":
        return base * gamma ** (u // max(1, step_size))
    span = total - (warm if warm > 0 else 0) - 1
    # pi * u / span rather than elag's pi * (u / span): the same up to the last bit, and the
    # rounding this twin had before it read configs, so its MLP runs did not change
    arg = math.pi * u / span if 0 < span and u <= span else math.pi
    return lo + (base - lo) * 0.5 * (1.0 + math.cos(arg))


class PrunePlan:
    def __init__(self, cfg, total):
        self.method = choice(cfg, "prune.method", "none", ("none", "oneshot", "gmp"))
        self.scope = choice(cfg, "prune.scope", "layer", ("layer", "global"))
        choice(cfg, "prune.criterion", "magnitude", ("magnitude",))
        choice(cfg, "prune.granularity", "element", ("element",))
        choice(cfg, "prune.distribution", "uniform", ("uniform",))
        self.s_i = cfg.num("prune.initial", 0)
        self.s_f = cfg.num("prune.target", 0.9)
        self.exponent = cfg.num("prune.exponent", 3)
        self.dt = max(1, cfg.int("prune.frequency", 100))

        def resolve(key, default):
            v, frac = cfg.when(key, default)
            return min(max(c_round(v * total) if frac else v, 0), total - 1)

        self.t0 = resolve("prune.start", 0)
        end = resolve("prune.end", 1.0)
        if self.method != "none" and end < self.t0:
            raise ConfigError(f"{cfg.path}: prune.end (step {end}) comes before prune.start "
                              f"(step {self.t0}) in a run of {total} steps")
        self.n = (end - self.t0) // self.dt if self.method == "gmp" else 0

    def is_update(self, t):
        if self.method == "none" or t < self.t0:
            return False
        return (t - self.t0) // self.dt <= self.n and (t - self.t0) % self.dt == 0

    def sparsity(self, t):
        if self.method == "none":
            return 0.0
        if self.method == "oneshot":
            return 0.0 if t < self.t0 else self.s_f
        if t < self.t0:
            return 0.0
        if self.n <= 0 or t >= self.t0 + self.n * self.dt:
            return self.s_f
        if t <= self.t0:
            return self.s_i
        frac = (t - self.t0) / (self.n * self.dt)
        return self.s_f + (self.s_i - self.s_f) * (1.0 - frac) ** self.exponent


def zeros_in_mask(m):
    return int((m.weight_mask == 0).sum()) if hasattr(m, "weight_mask") else 0


def update_masks(layers, scope, s):
    """Prune to sparsity s: amount counts only the still-unpruned entries, so it is the number
    of new zeros, and each tensor (all of them together, in global scope) ends with exactly
    round(s n) zeros."""
    if scope == "layer":
        for m in layers:
            prune.l1_unstructured(m, "weight", amount=max(0, c_round(s * m.weight.numel()) - zeros_in_mask(m)))
    else:
        total = sum(m.weight.numel() for m in layers)
        have = sum(zeros_in_mask(m) for m in layers)
        prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured,
                                  amount=max(0, c_round(s * total) - have))


# ---- main -------------------------------------------------------------------------------------

def describe(model, prunable, rows, in_shape, out_shape, params_total, params_prunable):
    out = sys.stderr
    print(f"{'layer':16}{'type':16}{'output':>18}{'params':>12}{'prunable':>12}", file=out)
    print(f"{'(input)':16}{'':16}{shape_str(in_shape):>18}", file=out)
    for r in rows:
        print(f"{r['name']:16}{r['type']:16}{shape_str(r['output']):>18}{r['params']:12d}"
              f"{r['prunable']:12d}", file=out)
    # batchnorm's running mean and variance: no parameters to PyTorch, but kept with them
    buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    print(f"parameters: {params_total} in all, {params_prunable} in prunable weights; "
          f"{buffers} more in batchnorm running statistics", file=out)
    print(model, file=out)
    print(json.dumps({"input_shape": list(in_shape), "output_shape": list(out_shape),
                      "params_total": params_total, "params_prunable": params_prunable,
                      "params_buffers": buffers,
                      "prunable_tensors": [{"name": n, "shape": list(m.weight.shape)}
                                           for n, m in prunable],
                      "layers": rows}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=DEFAULT_CONFIG,
                    help="elag config file (default: configs/fashion_mlp_gmp.yaml)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-limit", type=int, default=None,
                    help="use the first N training examples (default: the config's)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    ap.add_argument("--seed", type=int, default=None, help="default: the config's")
    ap.add_argument("--describe", action="store_true",
                    help="print the network and its parameter counts; train nothing")
    args = ap.parse_args()
    for k in ("epochs", "threads", "batch_size"):
        if getattr(args, k) is not None and getattr(args, k) < 1:
            ap.error(f"--{k.replace('_', '-')} must be >= 1")
    if args.train_limit is not None and args.train_limit < 1:
        ap.error("--train-limit must be >= 1")

    try:
        cfg = Config(args.config)
        return run(cfg, args)
    except (ConfigError, OSError, ValueError) as e:
        print(f"torch_train.py: {e}", file=sys.stderr)
        return 2


def run(cfg, args):
    where = cfg.path
    dataset = choice(cfg, "data.dataset", "fashion-mnist", ("fashion-mnist", "idx"))
    data_dir = cfg.str("data.path", "/usr/share/datasets/fashion-mnist")
    norm = ((cfg.num("data.mean", 0.2860), cfg.num("data.std", 0.3530))
            if cfg.bool("data.normalize", True) else None)
    layers = layer_list(cfg)
    images = any(isinstance(l, dict) and l.get("type") in SPATIAL for l in layers)
    seed = args.seed if args.seed is not None else cfg.int("seed", 0)
    epochs = args.epochs or cfg.int("train.epochs", 10)
    bs = args.batch_size or cfg.int("train.batch_size", 128)
    opt_type = choice(cfg, "train.optimizer.type", "sgd", ("sgd", "adamw"))
    lr = cfg.num("train.optimizer.lr", 0.05 if opt_type == "sgd" else 0.001)
    wd = cfg.num("train.optimizer.weight_decay", 0 if opt_type == "sgd" else 0.01)
    sched = (lr, choice(cfg, "train.lr_schedule.type", "constant", ("constant", "step", "cosine")),
             cfg.int("train.lr_schedule.warmup_steps", 0), cfg.int("train.lr_schedule.step_size", 0),
             cfg.num("train.lr_schedule.gamma", 0.1), cfg.num("train.lr_schedule.min_lr", 0))

    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)

    if dataset == "idx" and cfg.raw("data.path") is None:
        raise ConfigError(f"{where}: data.dataset idx needs data.path")
    train_limit = args.train_limit if args.train_limit is not None else cfg.int("data.train_limit", 0)
    x_train, y_train = load(data_dir, "train", train_limit, images, norm)
    in_shape = tuple(x_train.shape[1:])
    model, prunable, rows = build_model(layers, in_shape, where)
    params_total = sum(p.numel() for p in model.parameters())
    params_prunable = sum(m.weight.numel() for _, m in prunable)
    if args.describe:
        with torch.no_grad():
            out_shape = tuple(model.eval()(x_train[:2]).shape[1:])
        describe(model, prunable, rows, in_shape, out_shape, params_total, params_prunable)
        return 0
    x_test, y_test = load(data_dir, "test", cfg.int("data.test_limit", 0), images, norm)
    val_split = cfg.num("data.val_split", 0)
    if val_split > 0:  # elag holds out the tail of the training set: count rounded half up
        n_val = int(len(x_train) * val_split + 0.5)
        if n_val < 1 or n_val >= len(x_train):
            raise ConfigError(f"{where}: data.val_split {val_split} leaves no "
                              f"{'validation' if n_val < 1 else 'training'} examples")
        x_train, y_train = x_train[:-n_val].contiguous(), y_train[:-n_val].contiguous()

    layers_p = [m for _, m in prunable]
    # The optimizer holds the weight Parameters themselves; prune re-registers the same objects
    # as weight_orig, so creating it before pruning starts is correct.
    if opt_type == "sgd":
        momentum = cfg.num("train.optimizer.momentum", 0.9)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd,
                              nesterov=cfg.bool("train.optimizer.nesterov", False))
    else:
        betas = cfg.raw("train.optimizer.betas", [0.9, 0.999])
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd,
                                betas=tuple(to_num(b, "train.optimizer.betas", where) for b in betas),
                                eps=cfg.num("train.optimizer.eps", 1e-8))

    n_train = len(x_train)
    bs = min(bs, n_train)  # as elag: a batch larger than the set is the whole set
    steps_per_epoch = (n_train + bs - 1) // bs
    total = epochs * steps_per_epoch
    plan = PrunePlan(cfg, total)
    if plan.method != "none" and not layers_p:
        raise ConfigError(f"{where}: prune.method {plan.method} but no layer is prunable")

    gen = torch.Generator().manual_seed(seed)
    model.train()
    mask_seconds = train_seconds = 0.0
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(n_train, generator=gen)
        # Like elag, the clock starts after the epoch's shuffle (well under 1 ms either way).
        start = time.perf_counter()
        for b in range(steps_per_epoch):
            if plan.is_update(step):
                m0 = time.perf_counter()
                update_masks(layers_p, plan.scope, plan.sparsity(step))
                mask_seconds += time.perf_counter() - m0
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = x_train.index_select(0, idx), y_train.index_select(0, idx)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lr_t = lr_at(sched, step, total)
            for g in opt.param_groups:
                g["lr"] = lr_t
            opt.step()
            step += 1
        train_seconds += time.perf_counter() - start

    model.eval()
    # The whole test set in one batch for a flat network (as this twin always did); images in
    # chunks, where one batch of 10 000 would hold gigabytes of activations.
    chunk = len(x_test) if x_test.dim() == 2 else 500
    with torch.no_grad():
        correct = sum(int((model(x_test[i:i + chunk]).argmax(1) == y_test[i:i + chunk]).sum())
                      for i in range(0, len(x_test), chunk))
        zeros = total_w = 0
        for m in (layers_p or [m for m in model if isinstance(m, torch.nn.Linear)]):
            w = m.weight_orig * m.weight_mask if hasattr(m, "weight_mask") else m.weight
            zeros += int((w == 0).sum())
            total_w += w.numel()

    print(json.dumps({
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": args.threads,
        "epochs": epochs,
        "steps": step,
        "train_seconds": train_seconds,
        "samples_per_second": epochs * n_train / train_seconds,
        "mask_update_seconds": mask_seconds,
        "test_accuracy": correct / len(y_test),
        "sparsity": zeros / total_w if total_w else 0.0,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
