"""The training loop of the paper's protocol (Section 2, Figure 2, Appendix G), for K networks.

Adam, minibatches drawn from a fresh permutation of the training split each epoch; the
validation and test sets are evaluated every `eval_every` iterations (and at the first and
last iteration); training accuracy is measured once, at the end. `eval_limit` (a documented
deviation for quick runs) evaluates only the first N examples of each split. Runs always train
to full length: early stopping is an analysis of the recorded validation loss, as in the paper.

`train` runs K networks through one loop. A net is `engine.StackedNet` (K networks batched) or
`SingleNet` (one `LotteryNet`, the reference the engine is tested against); both offer:
  k                         the number of networks K
  parameters()              the leaf tensors Adam updates (each network its own)
  forward(x)                logits [K, B, classes] from images [K, B, C, H, W], a batch each
  mask_gradients()          zero the gradients of pruned weights (after backward)
  evaluate(x, y, precision) [(mean loss, accuracy)] * K on examples x [N, C, H, W], y [N]
  export(j), load(j, mask, parameters)   network j's parameters, named as in LotteryNet
"""
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import Splits
from .errors import LTHError
from .evaluation import autocast, evaluate
from .group_state import SAVE_EVERY_SECONDS, deferred_interrupt, read_state, write_state


def batch_indices(n: int, batch_size: int, seed: int, start: int, stop: int, device="cpu"):
    """Index tensors of iterations [start, stop) of the data order fixed by `seed`.

    Each epoch is a fresh permutation of the n training examples, cut into batches; the few
    examples left over at an epoch's end are skipped. Iteration i always gets the same batch,
    whatever `start` is, so a run resumed or rewound at `start` sees the same data."""
    per_epoch = n // batch_size
    generator = torch.Generator().manual_seed(seed)
    epoch, order = -1, None
    for i in range(stop):
        if i // per_epoch != epoch:
            epoch = i // per_epoch
            order = torch.randperm(n, generator=generator).to(device)
        if i >= start:
            j = (i % per_epoch) * batch_size
            yield i, order[j: j + batch_size]


class SingleNet:
    """One LotteryNet (trained in place) as a net of K = 1 networks for `train`."""
    k = 1

    def __init__(self, model):
        self.model = model

    def parameters(self) -> list:
        return list(self.model.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[0]).unsqueeze(0)

    def mask_gradients(self) -> None:
        self.model.mask_gradients()

    def evaluate(self, x, y, precision: str = "float32") -> list:
        return [evaluate(self.model, x, y, precision)]

    def export(self, j: int) -> dict:
        return self.model.parameters_state()

    def load(self, j: int, mask: dict, parameters: dict) -> None:
        self.model.apply_masks(mask)
        self.model.load_parameters(parameters)


class NonFiniteLoss(LTHError):
    """Network `network` of a group measured a non-finite loss at `iteration` (it diverged)."""

    def __init__(self, network: int, iteration: int, split: str, loss: float):
        super().__init__(f"network {network} diverged: its {split} loss is {loss} at "
                         f"iteration {iteration}")
        self.network, self.iteration, self.split, self.loss = network, iteration, split, loss


def check_finite(measured: list, iteration: int, split: str) -> list:
    """`measured` [(loss, accuracy)] * K, or NonFiniteLoss for the first network whose loss is
    not finite. Only losses already on the host are checked: no synchronisation per step."""
    for j, (loss, _) in enumerate(measured):
        if not math.isfinite(loss):
            raise NonFiniteLoss(j, iteration, split, loss)
    return measured


@dataclass
class TrainResult:
    evals: list = field(default_factory=list)  # (iteration, split, loss, accuracy)
    snapshot: dict | None = None               # parameters at `snapshot_at`, if asked
    # (iteration, parameters) at the minimum validation loss so far, the earliest of equal
    # ones (formats.summarize's early-stopping rule); None if its parameters are unknown
    early_stop: tuple | None = None
    seconds: float = 0.0                       # wall time of the training (of its group)


def eval_iterations(start: int, stop: int, every: int) -> set:
    return {start, stop} | set(range(start - start % every + every, stop, every))


def adam(parameters, learning_rate: float) -> torch.optim.Adam:
    """The paper's optimizer (Adam, default betas and epsilon), as one fused kernel per step.
    Fused Adam is the same update as torch's default loop up to float rounding; on this
    project's CPU it made the engine's K = 20 LeNet step 1.36x faster (README, "The engine"),
    because the update of every weight, pruned or not, is memory-bound."""
    return torch.optim.Adam(parameters, lr=learning_rate, fused=True)


def train(net, splits: Splits, *, iterations: int, learning_rate: float, batch_size: int,
          data_seeds: list, eval_every: int, eval_limit: int = 0, start: int = 0,
          snapshot_at: int | None = None, progress=None, train_accuracy: bool = True,
          precision: str = "float32", state_file: Path | None = None,
          should_stop=None) -> list[TrainResult]:
    """Train the K networks of `net` (masks applied) from iteration `start` to `iterations`,
    network j on the data order of `data_seeds[j]`; one TrainResult per network.

    With a `state_file`, the state at an iteration boundary is saved there every
    SAVE_EVERY_SECONDS and at Ctrl-C (then KeyboardInterrupt is raised), and training resumes
    from it with exactly the numbers of an uninterrupted run. `should_stop(iteration)`, asked
    at each boundary, stops the run there as Ctrl-C does. A network whose loss, measured at an
    evaluation iteration or on the training set at the end, is not finite stops the run with
    NonFiniteLoss (its index j and the iteration). `progress` (progress.RunProgress) is told
    the first iteration trained, `begin(first, the state file if resumed)`, then `update(1)`
    after each iteration."""
    optimizer = adam(net.parameters(), learning_rate)
    limit = slice(0, eval_limit or None)
    held_out = {"val": (splits.val_x[limit], splits.val_y[limit]),
                "test": (splits.test_x[limit], splits.test_y[limit])}
    checkpoints = eval_iterations(start, iterations, eval_every)
    results = [TrainResult() for _ in range(net.k)]

    def record(iteration):
        if iteration in checkpoints:
            for split, (x, y) in held_out.items():
                for j, (result, measured) in enumerate(zip(results, check_finite(
                        net.evaluate(x, y, precision), iteration, split))):
                    if split == "val" and measured[0] < min(
                            (e[2] for e in result.evals if e[1] == "val"), default=math.inf):
                        result.early_stop = (iteration, net.export(j))
                    result.evals.append((iteration, split, *measured))
        if iteration == snapshot_at:
            for j, result in enumerate(results):
                result.snapshot = net.export(j)

    first, earlier, started = start, 0.0, time.monotonic()
    elapsed = lambda: earlier + time.monotonic() - started  # noqa: E731
    if state_file is not None and state_file.exists():
        saved = read_state(state_file, net, optimizer, iterations)
        with torch.no_grad():
            for tensor, value in zip(net.parameters(), saved["weights"]):
                tensor.copy_(value)
        for result, evals, snapshot, early in zip(results, saved["evals"], saved["snapshots"],
                                                  saved.get("early_stop", [None] * net.k)):
            result.evals, result.snapshot = [tuple(e) for e in evals], snapshot
            result.early_stop = tuple(early) if early is not None else None
        first, earlier = saved["iteration"], saved.get("seconds", 0.0)
    if progress is not None:
        progress.begin(first, str(state_file) if first > start else "")

    device = splits.train_x.device
    streams = [batch_indices(len(splits.train_x), batch_size, seed, first, iterations, device)
               for seed in data_seeds]
    last_save = time.monotonic()
    with deferred_interrupt(state_file is not None) as interrupted:
        for batches in zip(*streams):
            i = batches[0][0]
            stop = interrupted() or (should_stop is not None and should_stop(i))
            if state_file is not None and (
                    stop or time.monotonic() - last_save > SAVE_EVERY_SECONDS):
                write_state(state_file, i, elapsed(), net, optimizer, results)
                last_save = time.monotonic()
            if stop:
                raise KeyboardInterrupt
            record(i)
            # One Adam step of every network on its own batch [K, B]: each network's loss is
            # its batch mean, so the gradients of their sum are each network's own.
            idx = torch.stack([b[1] for b in batches])
            with autocast(precision, device):
                logits = net.forward(splits.train_x[idx]).float()
            k, b, classes = logits.shape
            loss = F.cross_entropy(logits.reshape(-1, classes), splits.train_y[idx].reshape(-1),
                                   reduction="sum") / b
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            net.mask_gradients()
            optimizer.step()
            if progress is not None:
                progress.update(1)
    record(iterations)
    if train_accuracy:
        measured = check_finite(net.evaluate(splits.train_x[limit], splits.train_y[limit],
                                             precision), iterations, "train")
        for result, (loss, accuracy) in zip(results, measured):
            result.evals.append((iterations, "train", loss, accuracy))
    for result in results:
        result.seconds = elapsed()
    return results
