"""The formats of the files a results folder holds (store.py says where each lies): the column
names of its CSVs, the checkpoint's tag and structure, the one atomic write, and the checks that
read a file whole or refuse it in one line naming it and what to do.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import LTHError
from .models import LotteryNet

METRICS_COLUMNS = ["arch", "dataset", "strategy", "trial", "round", "pm", "iteration", "split",
                   "loss", "accuracy"]
SUMMARY_COLUMNS = ["arch", "dataset", "strategy", "trial", "round", "pm",
                   "early_stop_iteration", "early_stop_val_loss", "early_stop_test_accuracy",
                   "final_test_accuracy", "final_train_accuracy"]
# Format 2 adds the early-stopping network (`early_stop`, `early_stop_iteration`); format 1
# checkpoints (mask, initial, trained) are still read, resumed from and pruned from.
CHECKPOINT_FORMAT = "lth_utils.checkpoint/2"
CHECKPOINT_FORMATS = (CHECKPOINT_FORMAT, "lth_utils.checkpoint/1")


def atomic_write(path: Path, data: str | bytes | Callable[[Path], None]) -> None:
    """Write `path` whole or not at all: `data` (text, bytes, or a function that writes a
    given path) goes to a temporary file beside it, which then replaces it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        if callable(data):
            data(Path(tmp))
        else:
            Path(tmp).write_bytes(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def save_torch(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def read_torch(path, fmt: str | tuple = CHECKPOINT_FORMATS, what: str = "checkpoint",
               remedy: str = "") -> dict:
    """A checkpoint (or other torch file of this project, tagged `fmt`, or one of the tags
    `fmt` lists), or a one-line LTHError saying why not (and `remedy`, what to do)."""
    path, then = Path(path), f"; {remedy}" if remedy else ""
    if not path.is_file():
        raise LTHError(f"no {what} at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, ...: all mean "not readable"
        raise LTHError(f"{path} is not a readable {what} ({type(e).__name__}){then}") from None
    if not isinstance(obj, dict) or obj.get("format") not in (
            (fmt,) if isinstance(fmt, str) else fmt):
        raise LTHError(f"{path} is not an lth_utils {what}{then}")
    return obj


def damaged(path, why: str, remedy: str) -> LTHError:
    return LTHError(f"{path} is damaged ({why}); {remedy}")


@functools.lru_cache(maxsize=None)
def layout(arch: str, dataset: str) -> tuple:
    """({layer: mask shape}, {parameter: shape}) of LotteryNet(arch, dataset)."""
    model = LotteryNet(arch, dataset)
    return ({n: tuple(w.shape) for n, w in model.weights().items()},
            {k: tuple(v.shape) for k, v in model.parameters_state().items()})


def check_tensors(path, remedy: str, entry: str, tensors, shapes: dict, dtype=None) -> None:
    """`tensors` must be a dict of exactly the names of `shapes`, each a tensor of that shape
    (and `dtype`), or the file at `path` is damaged."""
    if not isinstance(tensors, dict) or set(tensors) != set(shapes):
        have = sorted(tensors) if isinstance(tensors, dict) else type(tensors).__name__
        raise damaged(path, f"its {entry} holds {have}, not {sorted(shapes)}", remedy)
    for name, shape in shapes.items():
        t = tensors[name]
        if not (isinstance(t, torch.Tensor) and tuple(t.shape) == tuple(shape)
                and (dtype is None or t.dtype == dtype)):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise damaged(path, f"its {entry} {name} is {got}, not {tuple(shape)}", remedy)


def check_checkpoint(ckpt: dict, path, remedy: str = "", arch=None, dataset=None) -> dict:
    """A checkpoint's structure: every entry there, for the network of its `hparams` (`arch` and
    `dataset` if given), its mask, initial, trained (and rewind, early_stop) tensors of that
    network, and the early-stopping iteration with the early-stopping network."""
    keys = {"hparams", "strategy", "trial", "round", "pm", "iteration", "mask", "initial",
            "trained"}
    hp = ckpt.get("hparams")
    if not keys <= set(ckpt) or not isinstance(hp, dict) or not {
            "arch", "dataset", "validation_size", "normalization"} <= set(hp):
        raise damaged(path, f"no {', '.join(sorted(keys - set(ckpt))) or 'hparams'}", remedy)
    for key, want in (("arch", arch), ("dataset", dataset)):
        if want is not None and hp.get(key) != want:
            raise damaged(path, f"a checkpoint of {key} {hp.get(key)!r}, not {want!r}", remedy)
    try:
        masks, parameters = layout(hp.get("arch"), hp.get("dataset"))
    except Exception:
        raise damaged(path, f"unknown network {hp.get('arch')!r} on {hp.get('dataset')!r}",
                      remedy) from None
    check_tensors(path, remedy, "mask", ckpt["mask"], masks, torch.bool)
    optional = tuple(part for part in ("rewind", "early_stop") if part in ckpt)
    for part in ("initial", "trained") + optional:
        check_tensors(path, remedy, part, ckpt[part], parameters)
    if "early_stop" in ckpt and type(ckpt.get("early_stop_iteration")) is not int:
        raise damaged(path, "its early_stop weights have no iteration", remedy)
    return ckpt


SPLITS = ("val", "test", "train")
CSV_TYPES = {"trial": int, "round": int, "iteration": int, "early_stop_iteration": int,
             **{c: float for c in ("pm", "loss", "accuracy", "early_stop_val_loss",
                                   "early_stop_test_accuracy", "final_test_accuracy",
                                   "final_train_accuracy")}}


def check_evals(evals) -> bool:
    """Whether `evals` are a unit's measurements: [iteration, split, loss, accuracy] rows with
    validation and test ones and one on the training set, the last."""
    try:
        ok = all(type(it) is int and split in SPLITS and math.isfinite(loss)
                 and 0 <= accuracy <= 1 for it, split, loss, accuracy in evals)
    except (TypeError, ValueError):
        return False
    splits = [e[1] for e in evals]
    return ok and {"val", "test"} <= set(splits) and splits.count("train") == 1 and \
        splits[-1] == "train"


def summarize(evals: list) -> list:
    """Early-stopping iteration (minimum validation loss, ties to the earliest), the validation
    loss and test accuracy there, and the final test and training accuracy (Figures 1, 3-5)."""
    val = {it: loss for it, split, loss, _ in evals if split == "val"}
    test = {it: acc for it, split, _, acc in evals if split == "test"}
    stop = min(val, key=lambda it: (val[it], it))
    train_acc = next(acc for _, split, _, acc in evals if split == "train")
    return [stop, val[stop], test[stop], test[max(test)], train_acc]


def checkpoint(hp, unit, pm: float, mask: dict, initial: dict, trained: dict,
               rewind: dict | None = None, early_stop: tuple | None = None) -> dict:
    """A unit's checkpoint: its parameters `hp` (as a dict), what it is (strategy, trial,
    round, Pm in %), its mask and its initial and trained parameters (and, for a dense run,
    its weights at the rewind iteration; and `early_stop`, (iteration, parameters) of the
    early-stopping network, Figure 1, when known), all on the CPU."""
    cpu = lambda d: {k: v.detach().cpu() for k, v in d.items()}  # noqa: E731
    ckpt = {"format": CHECKPOINT_FORMAT, "hparams": hp.to_dict(), "strategy": unit.strategy,
            "trial": unit.trial, "round": unit.round, "pm": pm, "iteration": hp.iterations,
            "mask": cpu(mask), "initial": cpu(initial), "trained": cpu(trained)}
    if rewind is not None:
        ckpt["rewind"] = cpu(rewind)
    if early_stop is not None:
        ckpt["early_stop_iteration"], ckpt["early_stop"] = early_stop[0], cpu(early_stop[1])
    return ckpt


def write_mask(path: Path, mask: dict) -> None:
    """`masks/<unit>.npz`: each layer's boolean mask bit-packed (numpy.packbits, row-major)
    and compressed, LeNet's 266,200 weights in at most 33 KB; with the seeds, enough to
    rebuild the network's initialization and to analyse which weights survive."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **pack_bits(mask))
    atomic_write(path, buffer.getvalue())


def read_mask(path: Path, shapes: dict) -> dict:
    """The mask `write_mask` kept at `path`, as boolean tensors of `shapes` ({layer: shape})."""
    try:
        with np.load(path) as packed:
            arrays = {name: packed[name] for name in packed.files}
    except Exception as e:  # cut short, a changed byte (CRC), not an npz file
        raise LTHError(f"{path} is not a readable mask file ({type(e).__name__}); "
                       f"restore it from git") from None
    sizes = {name: (int(np.prod(shape)) + 7) // 8 for name, shape in shapes.items()}
    if set(arrays) != set(shapes) or any(
            arrays[n].dtype != np.uint8 or arrays[n].shape != (sizes[n],) for n in shapes):
        raise damaged(path, "not the masks of this network", "restore it from git")
    return unpack_bits(arrays, shapes)


def pack_bits(mask: dict) -> dict:
    """Each layer's boolean mask as bytes, 8 weights to a byte (numpy.packbits, row-major):
    {layer: uint8 array of ceil(size / 8)}, the form masks/ and frontier/ keep."""
    return {name: np.packbits(m.numpy().reshape(-1)) for name, m in mask.items()}


def unpack_bits(packed: dict, shapes: dict) -> dict:
    """The inverse of `pack_bits`: boolean tensors of `shapes` ({layer: shape})."""
    return {name: torch.from_numpy(np.unpackbits(
        packed[name], count=int(np.prod(shape))).astype(bool)).reshape(shape)
            for name, shape in shapes.items()}
