"""Training one masked network with the paper's protocol (Section 2, Figure 2, Appendix G).

Adam, minibatches drawn from a fresh permutation of the training split each epoch; the
validation and test sets are evaluated every `eval_every` iterations (and at the first and
last iteration); training accuracy is measured once, at the end. `eval_limit` (a documented
deviation for quick runs) evaluates only the first N examples of each split. Runs always train to full
length: early stopping is an analysis of the recorded validation loss, as in the paper.
"""
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .data import Splits

EVAL_CHUNK = 1000
PRECISIONS = ("float32", "tf32", "bfloat16")


def autocast(precision: str, device: torch.device):
    """Forward passes in bf16 (weights, gradients and Adam stay float32) or float32, with the
    tensor-core setting of `precision` for them and the backward pass that follows."""
    set_tensor_cores(precision)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")


def set_tensor_cores(precision: str) -> None:
    """On CUDA, torch runs convolutions in TF32 (a 10-bit mantissa) unless told otherwise:
    "float32", the paper's arithmetic, turns TF32 off for convolutions and matmuls, "tf32"
    turns it on for both. A CPU ignores both settings."""
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"


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


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, precision: str = "float32") -> tuple:
    """Mean cross-entropy loss and accuracy of `model` on (x, y)."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), EVAL_CHUNK):
        with autocast(precision, x.device):
            logits = model(x[i: i + EVAL_CHUNK]).float()
        target = y[i: i + EVAL_CHUNK]
        loss += F.cross_entropy(logits, target, reduction="none").sum(dtype=torch.float64).item()
        correct += (logits.argmax(1) == target).sum().item()
    model.train(was_training)
    return loss / len(x), correct / len(x)


@dataclass
class TrainResult:
    evals: list = field(default_factory=list)  # (iteration, split, loss, accuracy)
    snapshot: dict | None = None               # parameters at `snapshot_at`, if asked
    seconds: float = 0.0                       # wall time of the training (of its group)


def eval_iterations(start: int, stop: int, every: int) -> set:
    return {start, stop} | set(range(start - start % every + every, stop, every))


def adam(parameters, learning_rate: float) -> torch.optim.Adam:
    """The paper's optimizer (Adam, default betas and epsilon), as one fused kernel per step.
    Fused Adam is the same update as torch's default loop up to float rounding; on this
    project's CPU it made the engine's K = 20 LeNet step 1.36x faster (README, "The engine"),
    because the update of every weight, pruned or not, is memory-bound."""
    return torch.optim.Adam(parameters, lr=learning_rate, fused=True)


def train(model, splits: Splits, iterations: int, learning_rate: float, batch_size: int,
          data_seed: int, eval_every: int, eval_limit: int = 0, start: int = 0,
          snapshot_at: int | None = None, progress=None,
          train_accuracy: bool = True, precision: str = "float32") -> TrainResult:
    """Train `model` (masks already applied) from iteration `start` to `iterations`."""
    optimizer = adam(model.parameters(), learning_rate)
    limit = slice(0, eval_limit or None)
    held_out = {"val": (splits.val_x[limit], splits.val_y[limit]),
                "test": (splits.test_x[limit], splits.test_y[limit])}
    checkpoints = eval_iterations(start, iterations, eval_every)
    result = TrainResult()
    started = time.monotonic()

    def record(iteration):
        if iteration in checkpoints:
            for split, (x, y) in held_out.items():
                result.evals.append((iteration, split, *evaluate(model, x, y, precision)))
        if iteration == snapshot_at:
            result.snapshot = model.parameters_state()

    model.train()
    device = splits.train_x.device
    for i, idx in batch_indices(len(splits.train_x), batch_size, data_seed, start, iterations,
                                device):
        record(i)
        with autocast(precision, device):
            logits = model(splits.train_x[idx]).float()
        loss = F.cross_entropy(logits, splits.train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress.update(1)
    record(iterations)
    if train_accuracy:
        result.evals.append((iterations, "train",
                             *evaluate(model, splits.train_x[limit], splits.train_y[limit],
                                       precision)))
    result.seconds = time.monotonic() - started
    return result
