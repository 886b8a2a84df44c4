"""The frontier of a committed, unfinished run: `frontier/<unit>.pt`, one file for each finished
unit that an unfinished one starts from (each trial's dense network, the last finished round of
each iterative chain), with each weight tensor stored at its unpruned positions only and the
mask bit-packed. A clone resumes from the CSVs and these files alone: `restore` rebuilds units/
from metrics.csv(.gz) and the checkpoints from the frontier, bit for bit (pruned positions hold
the masked initialization, which the seeds give back). A file is written once and deleted when
no unfinished unit needs it, so the dense networks' files stay the same for the whole run.
"""
from __future__ import annotations

import shutil

import torch

from .errors import LTHError
from .models import LotteryNet
from .formats import (check_tensors, damaged, layout, pack_bits, read_torch, save_torch,
                      unpack_bits)
from .store import Store
from .strategies import Network, Unit, masked

FRONTIER_FORMAT = "lth_utils.frontier/1"


def frontier_path(store: Store, unit: Unit):
    return store.dir / "frontier" / f"{unit.name(store.arch)}.pt"


def _unpruned(parameters: dict, mask: dict) -> dict:
    out = dict(parameters)
    for name, m in mask.items():
        out[LotteryNet.weight_key(name)] = parameters[LotteryNet.weight_key(name)][m]
    return out


def _filled(initial: dict, values: dict, mask: dict) -> dict:
    """The inverse of `_unpruned`: pruned weights keep their (masked) initial values."""
    out = dict(values)
    for name, m in mask.items():
        key = LotteryNet.weight_key(name)
        out[key] = initial[key].clone()
        out[key][m] = values[key]
    return out


def write_frontier(store: Store, net: Network, units: list, checkpoint) -> None:
    """frontier/ holds exactly `units` (finished units that unfinished ones start from):
    a file for each not written yet (`checkpoint(unit)` gives its checkpoint), the files of
    units no longer needed deleted, and the folder too once the run is complete."""
    folder = store.dir / "frontier"
    for unit in units:
        if frontier_path(store, unit).exists():
            continue
        ckpt = checkpoint(unit)
        mask = ckpt["mask"]
        entry = {"format": FRONTIER_FORMAT, "science": net.hp.science(),
                 "strategy": unit.strategy, "trial": unit.trial, "round": unit.round,
                 "mask": {n: torch.from_numpy(b) for n, b in pack_bits(mask).items()},
                 "trained": _unpruned(ckpt["trained"], mask)}
        if "rewind" in ckpt:
            entry["rewind"] = _unpruned(ckpt["rewind"], mask)
        save_torch(frontier_path(store, unit), entry)
    keep = {frontier_path(store, u) for u in units}
    for path in folder.glob("*.pt"):
        if path not in keep:
            path.unlink()
    if not units and folder.exists():
        folder.rmdir()


def read_entry(path, store: Store, net: Network) -> tuple:
    """(unit, mask, entry) of a frontier file, read whole and checked against `net`: its unit
    is the one it is named after, its mask that network's, its tensors the unpruned weights."""
    remedy = "restore it from git (it is committed with the run)"
    entry = read_torch(path, FRONTIER_FORMAT, "frontier file", remedy)
    if entry.get("science") != net.hp.science():
        raise LTHError(f"{path} belongs to other parameters; choose another --out")
    try:
        unit = Unit(entry["strategy"], entry["trial"], entry["round"])
        named = frontier_path(store, unit) == path
    except (KeyError, TypeError):
        named = False
    if not named:
        raise damaged(path, "not the frontier file of the unit it is named after", remedy)
    packed = {n: (size + 7) // 8 for n, size in net.sizes.items()}
    check_tensors(path, remedy, "mask", entry.get("mask"), {n: (k,) for n, k in
                                                            packed.items()}, torch.uint8)
    mask = unpack_bits({n: b.numpy() for n, b in entry["mask"].items()}, net.shapes)
    _, shapes = layout(net.hp.arch, net.hp.dataset)
    unpruned = {**shapes, **{LotteryNet.weight_key(n): (int(m.sum()),) for n, m in mask.items()}}
    for part in ("trained",) + (("rewind",) if "rewind" in entry else ()):
        check_tensors(path, remedy, part, entry.get(part), unpruned)
    return unit, mask, entry


def restore(store: Store, net: Network, initial_of, checkpoint_of) -> None:
    """Make a committed folder resumable: a checkpoint for each frontier file, as it was
    written, then every finished unit's record from metrics.csv(.gz); units/ appears at once,
    when all is there. `initial_of(unit)` gives a unit's initialization before masking (from
    the seeds, or the dense checkpoint restored before it); `checkpoint_of(unit, mask, initial,
    trained, rewind)` builds its checkpoint."""
    entries = [read_entry(path, store, net)
               for path in sorted((store.dir / "frontier").glob("*.pt"))]
    records = store.tables.read_metrics()
    finished = {Unit(r["strategy"], r["trial"], r["round"]) for r in records}
    if finished != store.finished():
        raise LTHError(f"{store.dir}: summary.csv and metrics.csv(.gz) hold other units; "
                       f"restore both from git")
    for unit, mask, entry in sorted(entries, key=lambda e: e[0].round):  # dense ones first
        initial = masked(initial_of(unit), mask)
        fill = lambda values: _filled(initial, values, mask)  # noqa: E731
        store.write_checkpoint(unit, checkpoint_of(
            unit, mask, initial, fill(entry["trained"]),
            fill(entry["rewind"]) if "rewind" in entry else None))
    partial = store.dir / "units.partial"
    shutil.rmtree(partial, ignore_errors=True)
    for r in records:
        store.write_record(Unit(r["strategy"], r["trial"], r["round"]), r["pm"], r["evals"],
                           folder=partial)
    partial.rename(store.dir / "units")
