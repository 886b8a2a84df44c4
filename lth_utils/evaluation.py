"""Measuring a network (Section 2, Figure 2): the arithmetic its forward passes run in, its
mean cross-entropy loss and accuracy on a split, and a checkpoint's weights evaluated on the
split and normalization they were trained with.
"""
import torch
import torch.nn.functional as F

from .data import load_splits
from .errors import LTHError
from .formats import CHECKPOINT_FORMAT, check_checkpoint, read_torch
from .models import LotteryNet

EVAL_CHUNK = 1000
WEIGHTS = ("trained", "initial", "early_stop")  # what a checkpoint holds to evaluate
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


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, precision: str = "float32") -> tuple:
    """Mean cross-entropy loss and accuracy of `model` (images [B, C, H, W] -> logits
    [B, classes]) on (x, y), in chunks of EVAL_CHUNK examples, the loss summed in float64 in
    a fixed order: the numbers depend on the network and the examples only."""
    loss, correct = 0.0, 0
    for i in range(0, len(x), EVAL_CHUNK):
        with autocast(precision, x.device):
            logits = model(x[i: i + EVAL_CHUNK]).float()
        target = y[i: i + EVAL_CHUNK]
        loss += F.cross_entropy(logits, target, reduction="none").sum(dtype=torch.float64).item()
        correct += (logits.argmax(1) == target).sum().item()
    return loss / len(x), correct / len(x)


def load_and_evaluate(path, split: str = "test", data_dir=None, device="cpu",
                      weights: str = "trained") -> tuple:
    """Loss and accuracy of a checkpoint's `weights` on `split` (train / val / test), with the
    data split and normalization it was trained with: "trained" (at the last iteration),
    "initial", or "early_stop" (at the iteration of minimum validation loss, Figure 1; a
    checkpoint without them is one LTHError line)."""
    ckpt = check_checkpoint(read_torch(path), path)
    if weights not in WEIGHTS:
        raise LTHError(f"weights must be one of {', '.join(map(repr, WEIGHTS))}, not "
                       f"{weights!r}")
    if weights == "early_stop" and "early_stop" not in ckpt:
        raise LTHError(f"{path} holds no early-stopping weights: " + (
            "it was written before checkpoints kept them (format "
            f"{ckpt['format']}); train its unit again to have them"
            if ckpt["format"] != CHECKPOINT_FORMAT else
            "its group was resumed from a state saved before they were kept, or it was "
            "rebuilt from frontier/, which keeps trained weights only"))
    hp = ckpt["hparams"]
    model = LotteryNet(hp["arch"], hp["dataset"]).to(device)
    model.apply_masks(ckpt["mask"])
    model.load_parameters(ckpt[weights])
    splits = load_splits(hp["dataset"], data_dir, hp["validation_size"], hp["normalization"],
                         device)
    return evaluate(model, *splits.split(split), hp.get("precision", "float32"))
