"""The fast engine: K masked networks of one architecture trained as one batched computation.

The trials x strategies of one pruning round are independent networks of the same shape.
Stacking their weights ([K, out, in] per layer) turns K small matrix products into one
batched product (`torch.baddbmm`) and K convolutions into one grouped convolution, so the
whole round runs as a single model. Each network keeps its own mask, initialization, data order
and Adam state (Adam is elementwise, so one optimizer over stacked tensors is K optimizers).
The numbers are those of training the networks one by one with `training.train` (the
reference), up to float summation order; tests/test_engine.py checks this.
"""
import contextlib
import signal
import threading
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .data import Splits
from .models import LotteryNet
from .paper import DATASETS
from .training import TrainResult, adam, autocast, batch_indices, eval_iterations

# A group's state (weights, Adam moments, records so far) is saved this often, and at Ctrl-C.
SAVE_EVERY_SECONDS = 300.0

# On a CPU, a fully-connected layer in which every network keeps at most this fraction of its
# weights runs on the unpruned weights only (`_SparseLinear`); denser layers run as dense
# batched products. Timed side by side on this project's CPU (`python -m lth_utils.bench
# --models 20 --density D`), the sparse layers made LeNet's K = 20 step 1.24x faster at 5%
# density and 1.41x at 2%, and were no faster at 10-20%: LeNet rounds 13 on (Pm < 6%) use them.
SPARSE_BELOW = 0.06

# Evaluation works through held-out examples in chunks whose widest activation, over all K
# networks, stays under this many floats.
EVAL_FLOATS = 1 << 25


class _SparseLinear(torch.autograd.Function):
    """y[j] = x[j] W[j]^T + b[j] for K networks, computed on the unpruned weights only: the
    product as K sparse (CSR) x dense products, the weight gradient sampled at the unpruned
    positions (elsewhere it is zero: those weights are pruned). `x` is [K, B, in], or [B, in]
    shared by all K (evaluation); `layout` is `StackedNet.sparse_layout`'s."""

    @staticmethod
    def forward(ctx, x, weight, bias, layout):
        index, counts, crows, cols = layout
        shape = weight.shape[1:]
        values = weight.reshape(-1)[index].split(counts)
        with warnings.catch_warnings():  # torch calls its CSR support beta, once per process
            warnings.simplefilter("ignore", UserWarning)
            mats = [torch.sparse_csr_tensor(crow, col, v, shape) for crow, col, v
                    in zip(crows, cols, values)]
        inputs = [x] * len(mats) if x.dim() == 2 else x.unbind(0)
        y = torch.stack([(m @ xi.t()).t() for m, xi in zip(mats, inputs)])
        ctx.save_for_backward(x, weight)
        ctx.mats, ctx.index = mats, index
        return y + bias.unsqueeze(1)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        sampled = [torch.sparse.sampled_addmm(m, g.t().contiguous(), xi, beta=0.0).values()
                   for m, g, xi in zip(ctx.mats, grad.unbind(0), x.unbind(0))]
        grad_weight = torch.zeros_like(weight)
        grad_weight.view(-1)[ctx.index] = torch.cat(sampled)
        return grad_x, grad_weight, grad.sum(1), None


class StackedNet:
    """K copies of one of the paper's networks, each with its own weights and mask."""

    def __init__(self, arch: str, dataset: str, k: int, device="cpu",
                 sparse_below: float = SPARSE_BELOW):
        template = LotteryNet(arch, dataset)
        self.arch, self.dataset, self.k = arch, dataset, k
        self.names = template.prunable_names
        self.layers = []  # ("conv" | "linear", name) | ("relu",) | ("pool",) | ("flatten",)
        self.weight, self.bias, self.mask = {}, {}, {}
        widest = 0
        x = torch.zeros(1, *DATASETS[dataset][:3])
        for name, module in template.layers.named_children():
            x = module(x)
            widest = max(widest, x[0].numel())
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
                self.layers.append((kind, name))
                w = module.weight
                self.weight[name] = torch.zeros(k, *w.shape, device=device, requires_grad=True)
                self.bias[name] = torch.zeros(k, w.shape[0], device=device, requires_grad=True)
                self.mask[name] = torch.ones(k, *w.shape, dtype=torch.bool, device=device)
            elif isinstance(module, nn.ReLU):
                self.layers.append(("relu",))
            elif isinstance(module, nn.MaxPool2d):
                self.layers.append(("pool",))
            elif isinstance(module, nn.Flatten):
                self.layers.append(("flatten",))
        self.eval_chunk = max(1, EVAL_FLOATS // (k * widest))
        # One grouped convolution for all K networks on CUDA; on a CPU, where convolutions
        # are compute-bound, a convolution per network (grouped ones, timed side by side with
        # K = 5 on this project's CPU, were about 15% slower forward and backward).
        self.grouped = torch.device(device).type == "cuda"
        # Sparse fully-connected layers: on a CPU only (where they were measured), 0 turns
        # them off; their layouts are built on first use, after the masks are loaded.
        self.sparse_below = sparse_below if torch.device(device).type == "cpu" else 0.0
        self._layouts = {}

    def parameters(self) -> list:
        return [t for name in self.names for t in (self.weight[name], self.bias[name])]

    @torch.no_grad()
    def load(self, j: int, mask: dict, parameters: dict) -> None:
        """Network j gets `mask` and `parameters` (LotteryNet names); pruned weights become 0."""
        self._layouts = {}
        for name in self.names:
            self.mask[name][j] = mask[name]
            self.weight[name][j] = parameters[LotteryNet.weight_key(name)] * mask[name].to(
                parameters[LotteryNet.weight_key(name)].device)
            self.bias[name][j] = parameters[f"layers.{name}.bias"]

    def export(self, j: int) -> dict:
        """Network j's parameters, named as in LotteryNet.parameters_state()."""
        state = {}
        for name in self.names:
            state[LotteryNet.weight_key(name)] = self.weight[name][j].detach().clone()
            state[f"layers.{name}.bias"] = self.bias[name][j].detach().clone()
        return state

    def sparse_layout(self, name: str):
        """(flat indices of the unpruned weights, their count per network, CSR row offsets
        and columns per network) of linear layer `name` if it runs sparse, else None."""
        if name not in self._layouts:
            mask = self.mask[name]
            counts = mask.reshape(self.k, -1).sum(1)
            layout = None
            if counts.max().item() <= self.sparse_below * mask[0].numel():
                rows = mask.sum(2)
                crows = [torch.cat([rows.new_zeros(1), r.cumsum(0)]) for r in rows]
                cols = [m.nonzero()[:, 1] for m in mask]
                index = mask.reshape(-1).nonzero().squeeze(1)
                layout = (index, counts.tolist(), crows, cols)
            self._layouts[name] = layout
        return self._layouts[name]

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """Pruned weights get zero gradient, so Adam never moves them (models.LotteryNet)."""
        for name in self.names:
            self.weight[name].grad.mul_(self.mask[name])

    def forward(self, x: torch.Tensor, shared: bool) -> torch.Tensor:
        """Logits [K, B, classes]. `x` is [K, B, C, H, W] (a batch per network) or, when
        `shared`, [B, C, H, W] (one batch for all, as in evaluation)."""
        k = self.k
        if shared:
            b = x.shape[0]
        else:
            b = x.shape[1]
            x = x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])  # [B, K*C, H, W]
        h, first = x, True
        for layer in self.layers:
            kind = layer[0]
            if kind == "conv":
                w, bias = self.weight[layer[1]], self.bias[layer[1]]
                if first and shared:       # one input for all: a single wide convolution
                    h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), bias.reshape(-1), padding=1)
                elif self.grouped:
                    h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), bias.reshape(-1), padding=1,
                                 groups=k)
                else:
                    h = torch.cat([F.conv2d(part, w[j], bias[j], padding=1)
                                   for j, part in enumerate(h.chunk(k, dim=1))], dim=1)
                first = False
            elif kind == "relu":
                h = F.relu(h)
            elif kind == "pool":
                h = F.max_pool2d(h, 2)
            elif kind == "flatten":
                if first and shared:       # LeNet on a shared batch: [B, D], broadcast below
                    h = h.reshape(b, -1)
                else:                      # [B, K*C, H, W] -> [K, B, C*H*W]
                    h = h.reshape(b, k, -1).transpose(0, 1)
            else:  # linear
                w, bias = self.weight[layer[1]], self.bias[layer[1]]
                layout = self.sparse_layout(layer[1])
                if layout is not None and not torch.is_autocast_enabled(h.device.type):
                    h = _SparseLinear.apply(h, w, bias, layout)
                elif h.dim() == 2:         # shared input of the first layer
                    h = torch.addmm(bias.reshape(1, -1), h,
                                    w.reshape(-1, w.shape[2]).t()).reshape(b, k, -1)
                    h = h.transpose(0, 1)
                else:
                    h = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
                first = False
        return h


@torch.no_grad()
def evaluate_stacked(net: StackedNet, x: torch.Tensor, y: torch.Tensor,
                     precision: str = "float32") -> list:
    """[(loss, accuracy)] of each of the K networks on (x, y)."""
    loss = torch.zeros(net.k, dtype=torch.float64, device=x.device)
    correct = torch.zeros(net.k, dtype=torch.int64, device=x.device)
    for i in range(0, len(x), net.eval_chunk):
        with autocast(precision, x.device):
            logits = net.forward(x[i: i + net.eval_chunk], shared=True).float()
        target = y[i: i + net.eval_chunk]
        k, n, classes = logits.shape
        per_example = F.cross_entropy(logits.reshape(-1, classes), target.repeat(k),
                                      reduction="none")
        loss += per_example.view(k, n).sum(1, dtype=torch.float64)
        correct += (logits.argmax(-1) == target).sum(1)
    return [(total / len(x), hits / len(x)) for total, hits in zip(loss.tolist(), correct.tolist())]


@contextlib.contextmanager
def deferred_interrupt(enabled: bool):
    """Turn Ctrl-C into a flag the training loop checks between iterations, so it can save a
    consistent state before stopping (only in the main thread, and only when `enabled`)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    flag = []
    previous = signal.signal(signal.SIGINT, lambda *_: flag.append(True))
    try:
        yield lambda: bool(flag)
    finally:
        signal.signal(signal.SIGINT, previous)


def train_stacked(net: StackedNet, splits: Splits, iterations: int, learning_rate: float,
                  batch_size: int, data_seeds: list, eval_every: int, eval_limit: int = 0,
                  start: int = 0, snapshot_at: int | None = None, progress=None,
                  train_accuracy: bool = True, precision: str = "float32",
                  state_file: Path | None = None) -> list:
    """Train the K networks of `net` from iteration `start` to `iterations`, network j on the
    data order of `data_seeds[j]`; one TrainResult per network (as `training.train`).

    With a `state_file`, the state at an iteration boundary is saved there every
    SAVE_EVERY_SECONDS and at Ctrl-C (then KeyboardInterrupt is raised), and training resumes
    from it: a resumed group ends with exactly the numbers of an uninterrupted one."""
    optimizer = adam(net.parameters(), learning_rate)
    limit = slice(0, eval_limit or None)
    held_out = {"val": (splits.val_x[limit], splits.val_y[limit]),
                "test": (splits.test_x[limit], splits.test_y[limit])}
    checkpoints = eval_iterations(start, iterations, eval_every)
    results = [TrainResult() for _ in range(net.k)]

    def record(iteration):
        if iteration in checkpoints:
            for split, (x, y) in held_out.items():
                for result, measured in zip(results, evaluate_stacked(net, x, y, precision)):
                    result.evals.append((iteration, split, *measured))
        if iteration == snapshot_at:
            for j, result in enumerate(results):
                result.snapshot = net.export(j)

    def save(iteration):
        state = {"iteration": iteration, "seconds": elapsed(), "weights": net.parameters(),
                 "optimizer": optimizer.state_dict(),
                 "evals": [r.evals for r in results], "snapshots": [r.snapshot for r in results]}
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_name(state_file.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(state_file)

    first, earlier, started = start, 0.0, time.monotonic()
    elapsed = lambda: earlier + time.monotonic() - started  # noqa: E731
    if state_file is not None and state_file.exists():
        saved = torch.load(state_file, map_location=splits.train_x.device, weights_only=True)
        with torch.no_grad():
            for tensor, value in zip(net.parameters(), saved["weights"]):
                tensor.copy_(value)
        optimizer.load_state_dict(saved["optimizer"])
        for result, evals, snapshot in zip(results, saved["evals"], saved["snapshots"]):
            result.evals, result.snapshot = [tuple(e) for e in evals], snapshot
        first, earlier = saved["iteration"], saved.get("seconds", 0.0)
        if progress is not None:
            progress.update(first - start)

    device = splits.train_x.device
    streams = [batch_indices(len(splits.train_x), batch_size, seed, first, iterations, device)
               for seed in data_seeds]
    last_save = time.monotonic()
    with deferred_interrupt(state_file is not None) as interrupted:
        for batches in zip(*streams):
            i = batches[0][0]
            if state_file is not None and (
                    interrupted() or time.monotonic() - last_save > SAVE_EVERY_SECONDS):
                save(i)
                last_save = time.monotonic()
                if interrupted():
                    raise KeyboardInterrupt
            _step(net, optimizer, splits, batches, record, precision, device)
            if progress is not None:
                progress.update(1)
    record(iterations)
    if train_accuracy:
        train_x, train_y = splits.train_x[limit], splits.train_y[limit]
        for result, measured in zip(results, evaluate_stacked(net, train_x, train_y,
                                                              precision)):
            result.evals.append((iterations, "train", *measured))
    for result in results:
        result.seconds = elapsed()
    return results


def _step(net, optimizer, splits, batches, record, precision, device):
    """Iteration i: the paper's measurements (if due), then one Adam step of every network on
    its own batch; each network's loss is its batch mean, so the sum's gradients are theirs."""
    record(batches[0][0])
    idx = torch.stack([b[1] for b in batches])           # [K, B]
    with autocast(precision, device):
        logits = net.forward(splits.train_x[idx], shared=False).float()
    k, b, classes = logits.shape
    loss = F.cross_entropy(logits.reshape(-1, classes), splits.train_y[idx].reshape(-1),
                           reduction="sum") / b
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    net.mask_gradients()
    optimizer.step()
