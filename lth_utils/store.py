"""A results folder, `<out>/<arch>_<dataset>_<preset>/`: its layout, every file format in it,
the one way its files are written (atomically), and how far its run has come.

  params.yaml        the resolved parameters and the latest invocation's provenance
  provenance.jsonl   one line per invocation and per trained group (wall time)
  summary.csv        one row per finished unit (strategy, trial, round): early stopping, ...
  metrics.csv        one row per measurement (committed as metrics.csv.gz)
  units/             a record per finished unit (its evaluations): a unit is done once here
  checkpoints/       `<unit>_it<N>.pt` (mask, initial, trained and early-stopping
                     parameters: formats.checkpoint) and
                     `<unit>_x<K>.state.pt` (an unfinished group's training state)
  frontier/          what a committed, unfinished run needs to go on (`frontier.py`)
  masks/             `<unit>.npz`: the mask of each network whose strategy prunes by trained
                     weights (winning tickets, one-shot, late resetting), bit-packed

Nothing else in the project parses these files or their names; their formats, and the checks
that read each one whole, are in formats.py, and the CSVs' reading and writing in tables.py.
A folder is `fresh` (no params.yaml), `in progress` (units/ here), `committed` (CSVs without
units/, as a clone has them) or `complete` (every planned unit finished).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import NamedTuple

import yaml
from filelock import FileLock, Timeout

from .config import FIELDS, Hparams
from .errors import LTHError
from .formats import (SUMMARY_COLUMNS, atomic_write, check_checkpoint, check_evals, damaged,
                      read_mask, read_torch, save_torch, write_mask)
from .strategies import RUN_ORDER, Unit
from .tables import Tables


def results_folder(out, arch: str, dataset: str, preset: str) -> Path:
    """Where an experiment's results live: `<out>/<arch>_<dataset>_<preset>/`."""
    return Path(out) / f"{arch}_{dataset}_{preset}"


class Status(NamedTuple):
    state: str      # fresh | in progress | committed | complete
    done: int       # planned units finished
    planned: int


class Store:
    """The results folder `folder` of an experiment on `arch` (needed to name units) and
    `dataset` (with `arch`, what its checkpoints must hold)."""

    def __init__(self, folder, arch: str | None = None, dataset: str | None = None):
        self.dir, self.arch, self.dataset = Path(folder), arch, dataset

    # --- where things are ----------------------------------------------------------------
    def record_path(self, unit: Unit) -> Path:
        return self.dir / "units" / f"{unit.name(self.arch)}.json"

    def checkpoint_path(self, unit: Unit, iterations: int) -> Path:
        return self.dir / "checkpoints" / f"{unit.name(self.arch)}_it{iterations}.pt"

    def group_state_path(self, units: list) -> Path:
        """Where an unfinished group's training state waits to be resumed: named after its
        first unit, its size and a digest of all its units, so another group never reads it."""
        names = [u.name(self.arch) for u in units]
        digest = hashlib.sha256(" ".join(names).encode()).hexdigest()[:8]
        return self.dir / "checkpoints" / f"{names[0]}_x{len(units)}_{digest}.state.pt"

    @property
    def has_results(self) -> bool:
        """Whether there is a summary.csv to read (finished units, as far as they go)."""
        return (self.dir / "summary.csv").is_file()

    @property
    def has_params(self) -> bool:
        return (self.dir / "params.yaml").is_file()

    def result_files(self) -> list:
        """The files that hold the measurements (a build's inputs), present or not; a new
        round's masks come with a new summary.csv."""
        return [self.dir / name for name in ("summary.csv", "metrics.csv", "metrics.csv.gz",
                                             "movement.csv")]

    @property
    def in_progress(self) -> bool:
        return (self.dir / "units").is_dir()

    @property
    def committed(self) -> bool:
        return self.has_results and not self.in_progress

    # --- one process at a time ------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.dir.parent / f".{self.dir.name}.lock"

    @contextlib.contextmanager
    def lock(self, wait: bool = False):
        """One process at a time in this folder: the second refuses in one line, or waits.
        The lock file lies beside the folder, so a refused run leaves the folder as it was."""
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(self.lock_path, timeout=-1 if wait else 0):
                yield
        except Timeout:
            raise LTHError(f"another process is running in {self.dir}; wait for it to "
                           f"finish (or stop it: it resumes where it stopped)") from None

    # --- how far it is -------------------------------------------------------------------
    def finished(self) -> set:
        """The finished units: records in units/, else the rows of summary.csv."""
        if self.in_progress:
            return {Unit(**{k: r[k] for k in ("strategy", "trial", "round")})
                    for r in self.records()}
        if not self.has_results:
            return set()
        return {Unit(r["strategy"], r["trial"], r["round"])
                for r in self.tables.read_rows("summary.csv", SUMMARY_COLUMNS)}

    def status(self, planned: list) -> Status:
        """Where the run of `planned` units stands in this folder."""
        finished = self.finished()
        done = sum(u in finished for u in planned)
        if not self.has_params:
            state = "fresh"
        elif done == len(planned):
            state = "complete"
        else:
            state = "in progress" if self.in_progress else "committed"
        return Status(state, done, len(planned))

    # --- parameters and provenance ------------------------------------------------------
    def read_params(self) -> dict:
        """params.yaml: {"hparams": ..., provenance keys ...}."""
        path = self.dir / "params.yaml"
        if not path.is_file():
            raise LTHError(f"no params.yaml in {self.dir}: not a results folder")
        remedy = "restore it from git, or choose another --out"
        try:
            text = path.read_text()
            params = yaml.safe_load(text)
            missing = set(FIELDS) - set(params["hparams"])
        except Exception:
            raise LTHError(f"{path} is not a parameters file of this project; {remedy}") \
                from None
        if missing or not text.endswith("\n"):  # cut short: defaults would fill it in
            raise damaged(path, f"no {', '.join(sorted(missing))}" if missing else
                          "cut short", remedy)
        try:
            Hparams(**params["hparams"])
        except LTHError as e:
            raise damaged(path, str(e), remedy) from None
        return params

    def read_hparams(self) -> Hparams:
        return Hparams(**self.read_params()["hparams"])

    def check_params(self, hp: Hparams) -> None:
        """Refuse a folder that holds results of other science than `hp`'s."""
        if not self.has_params:
            return
        old = self.read_hparams().science()
        changed = [f"{k}: {old[k]} -> {v}" for k, v in hp.science().items() if old.get(k) != v]
        if changed:
            raise LTHError(f"{self.dir} holds results of other parameters "
                           f"({'; '.join(changed)}); choose another --out or delete it")

    def write_params(self, hp: Hparams, provenance: dict) -> None:
        self.check_params(hp)
        atomic_write(self.dir / "params.yaml",
                     yaml.safe_dump({"hparams": hp.to_dict(), **provenance}, sort_keys=False))

    def log(self, record: dict) -> None:
        """Append a line to provenance.jsonl (invocations and trained groups' wall times)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(self.dir / "provenance.jsonl", "a") as f:
            f.write(json.dumps({"time": stamp, **record}) + "\n")

    def provenance(self) -> list:
        path = self.dir / "provenance.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # --- finished units -----------------------------------------------------------------
    def write_record(self, unit: Unit, pm: float, evals: list, folder: Path | None = None):
        """A unit's record: it is done once this file exists (written after its checkpoint)."""
        record = {"strategy": unit.strategy, "trial": unit.trial, "round": unit.round,
                  "pm": pm, "evals": [list(e) for e in evals]}
        path = self.record_path(unit)
        atomic_write(path if folder is None else folder / path.name, json.dumps(record))

    def records(self) -> list:
        """Every unit record of units/, in the order rows are written (strategy, trial, round)."""
        order = {s: i for i, s in enumerate(RUN_ORDER)}
        records = [self.read_record(p) for p in (self.dir / "units").glob("*.json")]
        return sorted(records, key=lambda r: (order[r["strategy"]], r["trial"], r["round"]))

    def read_record(self, path: Path) -> dict:
        """A unit record, read whole and checked (its unit, pm and evaluations), or refused."""
        remedy = "delete it to train that unit again"
        try:
            r = json.loads(path.read_text())
            unit = Unit(r["strategy"], r["trial"], r["round"])
            ok = (r["strategy"] in RUN_ORDER and all(type(r[k]) is int for k in ("trial",
                  "round")) and isinstance(r["pm"], float) and check_evals(r["evals"]))
        except Exception as e:  # cut short, not JSON, an entry missing
            raise damaged(path, f"{type(e).__name__}", remedy) from None
        if not ok or (self.arch and path.name != f"{unit.name(self.arch)}.json"):
            raise damaged(path, "not the record of the unit it is named after", remedy)
        return r

    def write_checkpoint(self, unit: Unit, ckpt: dict) -> None:
        save_torch(self.checkpoint_path(unit, ckpt["iteration"]), ckpt)

    def read_checkpoint(self, unit: Unit, iterations: int) -> dict:
        """`unit`'s checkpoint, checked whole: that unit's, of this folder's network."""
        path, record = self.checkpoint_path(unit, iterations), self.record_path(unit)
        remedy = f"delete it and {record} to train that unit again"
        ckpt = check_checkpoint(read_torch(path, remedy=remedy), path, remedy, self.arch,
                                self.dataset)
        if (ckpt["strategy"], ckpt["trial"], ckpt["round"], ckpt["iteration"]) != (
                unit.strategy, unit.trial, unit.round, iterations):
            raise damaged(path, "the checkpoint of another unit", remedy)
        return ckpt


    # --- masks and the CSVs ----------------------------------------------------------------
    def mask_path(self, unit: Unit) -> Path:
        return self.dir / "masks" / f"{unit.name(self.arch)}.npz"

    def write_mask(self, unit: Unit, mask: dict) -> None:
        """Every pruned network's mask, compact, committed with a run (formats.write_mask)."""
        write_mask(self.mask_path(unit), mask)

    def read_mask(self, unit: Unit, shapes: dict) -> dict:
        return read_mask(self.mask_path(unit), shapes)

    def write_csvs(self, hp: Hparams) -> None:
        """summary.csv and metrics.csv from every unit record (tables.py)."""
        self.tables.write(hp, self.records())

    @property
    def tables(self) -> Tables:
        """summary.csv and metrics.csv (tables.py)."""
        return Tables(self.dir, self.arch, self.dataset)
