"""The experiment driver: trials x pruning rounds x strategies, resumable, with tidy results.

Strategies (each a thin variation of one training unit; Section 2 and Figure 4):
  winning_ticket  iterative magnitude pruning; survivors reset to their original init
  random_reinit   the winning ticket's mask with a fresh random initialization
  random_sparse   a random mask with the same per-layer counts, fresh initialization
  oneshot         the dense network trained once, pruned straight to each round's counts,
                  reset to its init and retrained
  rewind          iterative pruning with survivors reset to their values at iteration k
                  of the dense run (late resetting, Frankle et al. 2019); k = 0 is the
                  winning ticket
Round 0 is the dense network: it is trained once per trial (as the winning ticket's round 0)
and is the Pm = 100% point of every strategy. All strategies of one (trial, round) see the
same data order, so they differ only in their mask and initialization.

A unit (strategy, trial, round) is done when its result file exists (written after its
checkpoint); a rerun skips done units, and the CSVs are rebuilt from the result files in a fixed
order, so an interrupted run, resumed, ends with the same CSVs as an uninterrupted one.

A run is committed as its CSVs and `frontier/`: one file for each checkpoint that its
unfinished units start from (each trial's dense network and the last finished round of its
iterative chains), each weight tensor stored at its unpruned positions only. A clone resumes
from these files alone: the result files come back from metrics.csv(.gz), the checkpoints from
the frontier, bit for bit, so a run can go on over several machines or sessions. A frontier
file is written once and deleted when no unfinished unit needs it, so the dense networks'
files stay the same from the first round to the last.
"""
import contextlib
import csv
import gzip
import hashlib
import io
import itertools
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from .config import STRATEGIES, Hparams
from .data import load_splits
from .engine import StackedNet
from .errors import LTHError
from .models import LotteryNet
from .pruning import (layer_counts, layer_rates, mask_counts, percent_remaining, prune_layerwise,
                      prune_to_counts, random_masks)
from .training import SingleNet, evaluate, train

METRICS_COLUMNS = ["arch", "dataset", "strategy", "trial", "round", "pm", "iteration", "split",
                   "loss", "accuracy"]
SUMMARY_COLUMNS = ["arch", "dataset", "strategy", "trial", "round", "pm",
                   "early_stop_iteration", "early_stop_val_loss", "early_stop_test_accuracy",
                   "final_test_accuracy", "final_train_accuracy"]
CHECKPOINT_FORMAT = "lth_utils.checkpoint/1"
FRONTIER_FORMAT = "lth_utils.frontier/1"
ENGINES = ("stacked", "reference")  # engine.py (default) or training.py, one network at a time


def derive_seed(*parts) -> int:
    """A 63-bit seed from any tuple of names and numbers, the same on every platform."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


# --- atomic files ------------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# --- checkpoints --------------------------------------------------------------------------------

def read_checkpoint(path, fmt: str = CHECKPOINT_FORMAT, what: str = "checkpoint") -> dict:
    """A checkpoint (or frontier) written by this driver, or a one-line LTHError saying why
    not."""
    path = Path(path)
    if not path.is_file():
        raise LTHError(f"no {what} at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, ...: all mean "not readable"
        raise LTHError(f"{path} is not a readable {what} ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise LTHError(f"{path} is not an lth_utils {what}")
    return ckpt


def load_and_evaluate(path, split: str = "test", data_dir=None, device="cpu",
                      weights: str = "trained") -> tuple:
    """Loss and accuracy of a checkpoint's `weights` ("trained" or "initial") on `split`
    (train / val / test), with the data split and normalization it was trained with."""
    ckpt = read_checkpoint(path)
    if weights not in ("trained", "initial"):
        raise LTHError(f"weights must be 'trained' or 'initial', not {weights!r}")
    hp = ckpt["hparams"]
    model = LotteryNet(hp["arch"], hp["dataset"]).to(device)
    model.apply_masks(ckpt["mask"])
    model.load_parameters(ckpt[weights])
    splits = load_splits(hp["dataset"], data_dir, hp["validation_size"], hp["normalization"],
                         device)
    return evaluate(model, *splits.split(split), hp.get("precision", "float32"))


# --- the driver --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    strategy: str
    trial: int
    round: int

    def name(self, arch: str) -> str:
        return f"{arch}_{self.strategy}_trial{self.trial}_round{self.round}"


def plan(hp: Hparams) -> list:
    """The units of `hp` in the order they run: every strategy's dependencies come first.
    The winning ticket always runs: the controls are defined by its masks and dense run."""
    strategies = ["winning_ticket"] + [s for s in STRATEGIES
                                       if s in hp.strategies and s != "winning_ticket"]
    return [Unit(s, t, r) for t in range(hp.trials) for r in range(hp.rounds + 1)
            for s in strategies if r > 0 or s == "winning_ticket"]


def results_folder(out, arch: str, dataset: str, preset: str) -> Path:
    """Where an experiment's results live: `<out>/<arch>_<dataset>_<preset>/`."""
    return Path(out) / f"{arch}_{dataset}_{preset}"


class Experiment:
    """One results folder: `<out>/<arch>_<dataset>_<preset>/`."""

    def __init__(self, hp: Hparams, out="results", data_dir=None, device="cpu",
                 engine: str = "stacked", max_models: int = 0):
        if engine not in ENGINES:
            raise LTHError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.hp, self.device, self.data_dir = hp, torch.device(device), data_dir
        self.engine, self.max_models = engine, max_models
        self.dir = results_folder(out, hp.arch, hp.dataset, hp.preset)
        self._splits = None
        self._states = {}  # unit -> checkpoint, for the units others depend on
        model = LotteryNet(hp.arch, hp.dataset)
        self.shapes = {n: w.shape for n, w in model.weights().items()}
        self.sizes = {n: w.numel() for n, w in model.weights().items()}
        self.rates = layer_rates(hp.arch, model.layer_kinds(), hp.prune_rates)

    # where things are
    def checkpoint_path(self, unit: Unit, iteration: int | None = None) -> Path:
        it = self.hp.iterations if iteration is None else iteration
        return self.dir / "checkpoints" / f"{unit.name(self.hp.arch)}_it{it}.pt"

    def group_state_path(self, units: list) -> Path:
        """Where an unfinished group's training state waits to be resumed."""
        return self.dir / "checkpoints" / f"{units[0].name(self.hp.arch)}_x{len(units)}.state.pt"

    def result_path(self, unit: Unit) -> Path:
        return self.dir / "units" / f"{unit.name(self.hp.arch)}.json"

    def done(self, unit: Unit) -> bool:
        return self.result_path(unit).exists()

    @property
    def splits(self):
        if self._splits is None:
            hp = self.hp
            self._splits = load_splits(hp.dataset, self.data_dir, hp.validation_size,
                                       hp.normalization, self.device)
        return self._splits

    def counts(self, round_: int) -> dict:
        return layer_counts(self.sizes, self.rates, round_)

    # what each unit starts from
    def state(self, unit: Unit) -> dict:
        if unit not in self._states:
            self._states[unit] = read_checkpoint(self.checkpoint_path(unit))
        return self._states[unit]

    def weights(self, parameters: dict) -> dict:
        """The prunable weights, by layer name, of a parameters state."""
        return {n: parameters[LotteryNet.weight_key(n)] for n in self.shapes}

    def init(self, seed_parts: tuple) -> dict:
        model = LotteryNet(self.hp.arch, self.hp.dataset)
        model.initialize(torch.Generator().manual_seed(derive_seed(self.hp.seed, *seed_parts)))
        return model.parameters_state()

    def starting_point(self, unit: Unit) -> tuple:
        """(mask, initial parameters, first iteration) of `unit`."""
        return self.mask(unit), *self.initialization(unit)

    def dependencies(self, unit: Unit) -> list:
        """The units whose checkpoints `unit` starts from (`mask`, `initialization`)."""
        s, t, r = unit.strategy, unit.trial, unit.round
        dense = Unit("winning_ticket", t, 0)
        if r == 0 or s == "random_sparse":
            return []
        if s in ("winning_ticket", "random_reinit"):
            return [Unit("winning_ticket", t, r - 1)]
        if s == "rewind" and r > 1:
            return [Unit("rewind", t, r - 1), dense]
        return [dense]  # oneshot, and rewind's first round

    def mask(self, unit: Unit) -> dict:
        """The mask `unit` trains with: all ones in round 0, then its strategy's."""
        hp, (s, t, r) = self.hp, (unit.strategy, unit.trial, unit.round)
        if r == 0:
            return {n: torch.ones(shape, dtype=torch.bool) for n, shape in self.shapes.items()}
        if s in ("winning_ticket", "random_reinit", "rewind"):
            previous = self.state(self.dependencies(unit)[0])
            return prune_layerwise(self.weights(previous["trained"]), previous["mask"],
                                   self.rates)
        if s == "random_sparse":
            generator = torch.Generator().manual_seed(derive_seed(hp.seed, t, s, r, "mask"))
            return random_masks(self.shapes, self.counts(r), generator)
        if s == "oneshot":
            dense = self.state(Unit("winning_ticket", t, 0))
            return prune_to_counts(self.weights(dense["trained"]), self.counts(r))
        raise LTHError(f"unknown strategy {s!r}")

    def initialization(self, unit: Unit) -> tuple:
        """(parameters before masking, first iteration) of `unit`: the trial's original
        initialization, a fresh one (random_reinit, random_sparse), or the dense network's
        weights at iteration k (rewind)."""
        s, t, r = unit.strategy, unit.trial, unit.round
        if r == 0 or s in ("winning_ticket", "oneshot"):
            return self.init((t, "init")), 0
        if s == "rewind":
            dense = self.state(Unit("winning_ticket", t, 0))
            k = self.hp.rewind_iteration
            return dense["rewind" if k else "initial"], k
        return self.init((t, s, r)), 0

    def groups(self) -> list:
        """The units trained together: one round's trials x strategies (they depend only on
        earlier rounds), split by first iteration, at most `max_models` at a time; with the
        reference engine, one unit at a time. Groups come from the whole plan, not from what
        is left to do, so a network always shares its batch with the same others and a
        resumed run gives the numbers of an uninterrupted one."""
        units = plan(self.hp)
        size = 1 if self.engine == "reference" else (self.max_models or len(units))
        order = {s: i for i, s in enumerate(STRATEGIES)}
        key = lambda u: (u.round, u.strategy == "rewind" and self.hp.rewind_iteration > 0)  # noqa: E731
        groups = []
        for _, same in itertools.groupby(sorted(units, key=lambda u: (
                *key(u), order[u.strategy], u.trial)), key=key):
            same = list(same)
            groups += [same[i: i + size] for i in range(0, len(same), size)]
        return groups

    def run_group(self, units: list, progress=None) -> None:
        """Train `units` (one batched computation unless the engine is the reference) and save
        each one's checkpoint and results."""
        hp, device = self.hp, self.device
        starts = [self.starting_point(u) for u in units]
        initial = [self.masked(init, mask) for mask, init, _ in starts]
        start = starts[0][2]
        # The dense run keeps its weights at iteration k for `rewind`, even if not asked now.
        snapshot_at = hp.rewind_iteration if units[0].round == 0 and hp.rewind_iteration else None
        seeds = [derive_seed(hp.seed, u.trial, u.round, "data") for u in units]
        common = dict(iterations=hp.iterations, learning_rate=hp.learning_rate,
                      batch_size=hp.batch_size, eval_every=hp.eval_every,
                      eval_limit=hp.eval_limit, start=start, snapshot_at=snapshot_at,
                      progress=progress, precision=hp.precision)
        if self.engine == "reference":
            net = SingleNet(LotteryNet(hp.arch, hp.dataset).to(device))
        else:
            net = StackedNet(hp.arch, hp.dataset, len(units), device)
        for j, (mask, _, _) in enumerate(starts):
            net.load(j, {n: m.to(device) for n, m in mask.items()},
                     {k: v.to(device) for k, v in initial[j].items()})
        state_file = self.group_state_path(units)
        results = train(net, self.splits, data_seeds=seeds, state_file=state_file, **common)
        trained = [net.export(j) for j in range(len(units))]
        for unit, (mask, _, _), init, result, params in zip(units, starts, initial, results,
                                                            trained):
            self.save_unit(unit, mask, init, params, result)
        self.log({"event": "group", "round": units[0].round,
                  "units": [u.name(hp.arch) for u in units],
                  "seconds": round(results[0].seconds, 1)})
        state_file.unlink(missing_ok=True)

    def log(self, record: dict) -> None:
        """Append to provenance.jsonl: each invocation (commit, machine, device) and each
        trained group's wall time, so a run resumed over several sessions keeps its history."""
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(self.dir / "provenance.jsonl", "a") as f:
            f.write(json.dumps({"time": stamp, **record}) + "\n")

    def masked(self, parameters: dict, mask: dict) -> dict:
        """`parameters` with the weights pruned by `mask` set to zero."""
        out = dict(parameters)
        for name, m in mask.items():
            key = LotteryNet.weight_key(name)
            out[key] = parameters[key] * m
        return out

    def save_unit(self, unit: Unit, mask: dict, initial: dict, trained: dict, result) -> None:
        """The unit's checkpoint, then its result file: it is done once its result exists."""
        ckpt = self.save_checkpoint(unit, mask, initial, trained, result.snapshot)
        record = {"strategy": unit.strategy, "trial": unit.trial, "round": unit.round,
                  "pm": ckpt["pm"], "evals": result.evals}
        write_text(self.result_path(unit), json.dumps(record))

    def save_checkpoint(self, unit: Unit, mask: dict, initial: dict, trained: dict,
                        snapshot: dict | None = None) -> dict:
        pm = percent_remaining(mask_counts(mask), self.sizes)
        cpu = lambda d: {k: v.detach().cpu() for k, v in d.items()}  # noqa: E731
        ckpt = {"format": CHECKPOINT_FORMAT, "hparams": self.hp.to_dict(),
                "strategy": unit.strategy, "trial": unit.trial, "round": unit.round, "pm": pm,
                "iteration": self.hp.iterations, "mask": cpu(mask), "initial": cpu(initial),
                "trained": cpu(trained)}
        if snapshot is not None:
            ckpt["rewind"] = cpu(snapshot)
        with atomic_path(self.checkpoint_path(unit)) as tmp:
            torch.save(ckpt, tmp)
        self._states[unit] = ckpt
        return ckpt

    # the frontier: what a committed run needs to go on
    @property
    def frontier_dir(self) -> Path:
        return self.dir / "frontier"

    def frontier_path(self, unit: Unit) -> Path:
        return self.frontier_dir / f"{unit.name(self.hp.arch)}.pt"

    def frontier(self) -> list:
        """The finished units that unfinished ones start from, in plan order."""
        units = plan(self.hp)
        needed = {d for u in units if not self.done(u) for d in self.dependencies(u)}
        return [u for u in units if u in needed and self.done(u)]

    def write_frontier(self) -> None:
        """frontier/: a file for each frontier unit not written yet, each weight tensor at its
        unpruned positions only (the pruned ones hold the masked initialization); the files of
        units no longer needed are deleted, and the folder once the run is complete."""
        units = self.frontier()
        for unit in units:
            if self.frontier_path(unit).exists():
                continue
            ckpt = self.state(unit)
            mask = ckpt["mask"]
            entry = {"format": FRONTIER_FORMAT, "science": self.hp.science(),
                     "strategy": unit.strategy, "trial": unit.trial, "round": unit.round,
                     "mask": {n: torch.from_numpy(np.packbits(m.numpy())) for n, m in
                              mask.items()},
                     "trained": self.unpruned(ckpt["trained"], mask)}
            if "rewind" in ckpt:
                entry["rewind"] = self.unpruned(ckpt["rewind"], mask)
            with atomic_path(self.frontier_path(unit)) as tmp:
                torch.save(entry, tmp)
        keep = {self.frontier_path(u) for u in units}
        for path in self.frontier_dir.glob("*.pt"):
            if path not in keep:
                path.unlink()
        if not units and self.frontier_dir.exists():
            self.frontier_dir.rmdir()

    def unpruned(self, parameters: dict, mask: dict) -> dict:
        """`parameters` with each masked weight tensor reduced to its unpruned values."""
        out = dict(parameters)
        for name, m in mask.items():
            key = LotteryNet.weight_key(name)
            out[key] = parameters[key][m]
        return out

    def check_starting_points(self, groups: list) -> None:
        """Refuse, before anything trains, a unit that starts from a finished one whose
        checkpoint is not here: a committed folder keeps only the checkpoints its own plan
        needs (`frontier/`), so a strategy added later, e.g. random_reinit to a run of winning
        tickets, may lack the masks of rounds already done."""
        arch = self.hp.arch
        for unit in (u for g in groups for u in g if not self.done(u)):
            for needed in self.dependencies(unit):
                if self.done(needed) and not self.checkpoint_path(needed).exists():
                    raise LTHError(f"{unit.name(arch)} starts from {needed.name(arch)}, which "
                                   f"is finished but whose checkpoint {self.dir} does not keep;"
                                   f" run it in another --out")

    def restore(self) -> None:
        """Make a committed folder resumable: each finished unit's result file from
        metrics.csv(.gz), and the checkpoints of frontier/ as they were written."""
        entries = [read_checkpoint(path, FRONTIER_FORMAT, "frontier file")
                   for path in sorted(self.frontier_dir.glob("*.pt"))]
        if any(entry.get("science") != self.hp.science() for entry in entries):
            raise LTHError(f"{self.frontier_dir} belongs to other parameters; "
                           f"choose another --out")
        records = read_metrics(self.dir)
        for entry in sorted(entries, key=lambda e: e["round"]):  # dense runs first
            unit = Unit(entry["strategy"], entry["trial"], entry["round"])
            mask = {n: torch.from_numpy(np.unpackbits(entry["mask"][n].numpy(),
                                                      count=self.sizes[n]).astype(bool))
                    .reshape(shape) for n, shape in self.shapes.items()}
            initial = self.masked(self.initialization(unit)[0], mask)
            fill = lambda values: self.filled(initial, values, mask)  # noqa: E731
            self.save_checkpoint(unit, mask, initial, fill(entry["trained"]),
                                 fill(entry["rewind"]) if "rewind" in entry else None)
        # units/ last, and at once: the folder counts as resumable once it exists
        partial = self.dir / "units.partial"
        shutil.rmtree(partial, ignore_errors=True)
        for record in records:
            unit = Unit(record["strategy"], record["trial"], record["round"])
            write_text(partial / self.result_path(unit).name, json.dumps(record))
        partial.rename(self.dir / "units")

    def filled(self, initial: dict, values: dict, mask: dict) -> dict:
        """The inverse of `unpruned`: pruned weights keep their (masked) initial values."""
        out = dict(values)
        for name, m in mask.items():
            key = LotteryNet.weight_key(name)
            out[key] = initial[key].clone()
            out[key][m] = values[key]
        return out

    # results
    def write_params(self, extra: dict) -> None:
        """Record the resolved parameters; refuse a folder that holds different science."""
        path = self.dir / "params.yaml"
        if path.exists():
            old = read_params(path).science()
            changed = [f"{k}: {old[k]} -> {v}" for k, v in self.hp.science().items()
                       if old.get(k) != v]
            if changed:
                raise LTHError(f"{self.dir} holds results of other parameters "
                               f"({'; '.join(changed)}); choose another --out or delete it")
        write_text(path, yaml.safe_dump({"hparams": self.hp.to_dict(), **extra},
                                        sort_keys=False))

    def write_csvs(self) -> None:
        """metrics.csv and summary.csv from every finished unit, in plan order."""
        order = {s: i for i, s in enumerate(["winning_ticket"] + list(STRATEGIES))}
        records = [json.loads(p.read_text()) for p in sorted((self.dir / "units").glob("*.json"))]
        records.sort(key=lambda r: (order[r["strategy"]], r["trial"], r["round"]))
        metrics, summary = io.StringIO(), io.StringIO()
        mw, sw = csv.writer(metrics, lineterminator="\n"), csv.writer(summary, lineterminator="\n")
        mw.writerow(METRICS_COLUMNS)
        sw.writerow(SUMMARY_COLUMNS)
        head = lambda r: [self.hp.arch, self.hp.dataset, r["strategy"], r["trial"],  # noqa: E731
                          r["round"], r["pm"]]
        for r in records:
            for iteration, split, loss, accuracy in r["evals"]:
                mw.writerow(head(r) + [iteration, split, loss, accuracy])
            sw.writerow(head(r) + summarize(r["evals"]))
        write_text(self.dir / "metrics.csv", metrics.getvalue())
        write_text(self.dir / "summary.csv", summary.getvalue())

    def run(self, progress: bool = True, provenance: dict | None = None) -> Path:
        """Run every unit not yet done; return the results folder."""
        groups = self.groups()
        todo = [g for g in groups if not all(self.done(u) for u in g)]
        committed = (self.dir / "summary.csv").exists() and not (self.dir / "units").exists()
        if todo:
            if committed and not self.frontier_dir.exists():
                raise LTHError(f"{self.dir} holds results without their training state "
                               f"(units/, checkpoints/ or frontier/); they cannot be resumed: "
                               f"choose another --out")
            self.splits  # missing data fails here, before anything is written
            if committed:
                self.restore()
                todo = [g for g in groups if not all(self.done(u) for u in g)]
            self.check_starting_points(todo)
        self.write_params(provenance or {})
        if todo:
            self.log({"event": "start", **(provenance or {})})
        total = sum(len(g) for g in groups)
        bar = tqdm(total=total, initial=total - sum(len(g) for g in todo), disable=not progress,
                   desc=f"{self.hp.arch} {self.hp.dataset} {self.hp.preset}", unit="run")
        try:
            for group in todo:
                r = group[0].round
                pm = percent_remaining(self.counts(r), self.sizes)
                bar.set_postfix_str(f"round {r} (Pm {pm:.1f}%): {len(group)} networks")
                with tqdm(total=self.hp.iterations, leave=False, disable=not progress,
                          unit="it", mininterval=0.5) as inner:
                    self.run_group(group, inner)
                self.write_csvs()  # the CSVs always hold every finished unit
                self.write_frontier()
                bar.update(len(group))
        finally:
            bar.close()
            if (self.dir / "units").exists():
                self.write_csvs()
        return self.dir


def read_params(path) -> Hparams:
    """The parameters recorded in a results folder's params.yaml."""
    try:
        return Hparams(**yaml.safe_load(Path(path).read_text())["hparams"])
    except Exception:
        raise LTHError(f"{path} is not a parameters file of this project; "
                       f"choose another --out") from None


def read_metrics(folder: Path) -> list:
    """The result records (strategy, trial, round, pm, evals) of metrics.csv, or of its
    gzip-compressed copy as committed, in file order."""
    plain, packed = folder / "metrics.csv", folder / "metrics.csv.gz"
    if not plain.exists() and not packed.exists():
        raise LTHError(f"{folder} has summary.csv but no metrics.csv(.gz) to resume from")
    records = {}
    with (open(plain, newline="") if plain.exists() else
          gzip.open(packed, "rt", newline="")) as f:
        for row in csv.DictReader(f):
            key = (row["strategy"], int(row["trial"]), int(row["round"]))
            record = records.setdefault(key, {"strategy": key[0], "trial": key[1],
                                              "round": key[2], "pm": float(row["pm"]),
                                              "evals": []})
            record["evals"].append([int(row["iteration"]), row["split"], float(row["loss"]),
                                    float(row["accuracy"])])
    return list(records.values())


def summarize(evals: list) -> list:
    """Early-stopping iteration (minimum validation loss), the validation loss and test accuracy
    there, and the final test and training accuracy (Figures 1, 3, 4, 5)."""
    val = {it: loss for it, split, loss, _ in evals if split == "val"}
    test = {it: acc for it, split, _, acc in evals if split == "test"}
    stop = min(val, key=lambda it: (val[it], it))
    final = max(test)
    train_acc = next(acc for _, split, _, acc in evals if split == "train")
    return [stop, val[stop], test[stop], test[final], train_acc]


def git_commit() -> str:
    """The project's commit, with `+dirty` if tracked files differ from it; `unknown` outside
    a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def machine() -> str:
    """The CPU model and core count (what timings depend on)."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def provenance(device, engine: str) -> dict:
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"commit": git_commit(), "machine": machine(), "device": name,
            "threads": torch.get_num_threads(), "torch": str(torch.__version__),
            "engine": engine}


def run_experiment(hp: Hparams, out="results", data_dir=None, device="cpu",
                   progress: bool = True, engine: str = "stacked", max_models: int = 0) -> Path:
    """Run (or resume) the experiment `hp`; return its results folder."""
    started = time.time()
    folder = Experiment(hp, out, data_dir, device, engine, max_models).run(
        progress, provenance(device, engine))
    if progress:
        tqdm.write(f"results in {folder} ({time.time() - started:.0f} s)")
    return folder
