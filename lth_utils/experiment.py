"""The experiment driver: trials x pruning rounds x strategies (strategies.py), resumable.

The plan is every (strategy, trial, round) unit of the parameters; the units not yet finished
are trained in groups (one round's networks of the same first iteration, at most `max_models`
at a time, as one batched computation), and each finished unit is saved through the store
(store.py): its checkpoint, then its record. A unit's numbers do not depend on the group it is
trained in, so a rerun trains only what is missing (another trial, another strategy, the rest of
an interrupted round) and never touches a finished unit. All strategies of one (trial, round)
see the same data order, so they differ only in their mask and initialization.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .budget import TimeBudget, estimate
from .config import Hparams
from .data import load_splits
from .errors import LTHError
from .formats import checkpoint
from .frontier import frontier_path, restore, write_frontier
from .models import LotteryNet
from .provenance import provenance
from .progress import RunProgress, complete_message, logged_speed
from .pruning import mask_counts, percent_remaining
from .store import Status, Store, results_folder
from .strategies import (RUN_ORDER, STRATEGIES, Network, Unit, derive_seed, starting_point,
                         starts_from)
from .engine import StackedNet
from .group_state import read_state
from .training import NonFiniteLoss, SingleNet, adam, train

ENGINES = ("stacked", "reference")  # engine.py (default) or one LotteryNet at a time


def plan(hp: Hparams) -> list:
    """The units of `hp` in the order they run: every unit's starting points come first.
    The winning ticket always runs: the controls are defined by its masks and dense run."""
    strategies = [s for s in RUN_ORDER if s == "winning_ticket" or s in hp.strategies]
    return [Unit(s, t, r) for t in range(hp.trials) for r in range(hp.rounds + 1)
            for s in strategies if r > 0 or s == "winning_ticket"]


class Experiment:
    """The experiment `hp` in its results folder `<out>/<arch>_<dataset>_<preset>/`."""

    def __init__(self, hp: Hparams, out="results", data_dir=None, device="cpu",
                 engine: str = "stacked", max_models: int = 0):
        if engine not in ENGINES:
            raise LTHError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.hp, self.device, self.data_dir = hp, torch.device(device), data_dir
        self.engine, self.max_models = engine, max_models
        self.store = Store(results_folder(out, hp.arch, hp.dataset, hp.preset), hp.arch,
                           hp.dataset)
        self.net = Network(hp)
        self._splits, self._checkpoints, self._finished = None, {}, None

    @property
    def dir(self) -> Path:
        return self.store.dir

    def status(self) -> Status:
        return self.store.status(plan(self.hp))

    @property
    def finished(self) -> set:
        """The finished units (read from the store once per run, then kept up to date)."""
        if self._finished is None:
            self._finished = self.store.finished()
        return self._finished

    def done(self, unit: Unit) -> bool:
        return unit in self.finished

    @property
    def splits(self):
        if self._splits is None:
            hp = self.hp
            self._splits = load_splits(hp.dataset, self.data_dir, hp.validation_size,
                                       hp.normalization, self.device)
        return self._splits

    def checkpoint(self, unit: Unit) -> dict:
        if unit not in self._checkpoints:
            self._checkpoints[unit] = self.store.read_checkpoint(unit, self.hp.iterations)
        return self._checkpoints[unit]

    def groups(self, units: list) -> list:
        """`units` as the groups they train in: by round and first iteration, then strategy
        and trial, at most `max_models` at a time (one with the reference engine)."""
        size = 1 if self.engine == "reference" else (self.max_models or len(units) or 1)
        def key(u):  # units of one group start at the same round and iteration
            return u.round, self._start(u)

        groups = []
        order = sorted(units, key=lambda u: (*key(u), RUN_ORDER.index(u.strategy), u.trial))
        for _, same in itertools.groupby(order, key=key):
            same = list(same)
            groups += [same[i: i + size] for i in range(0, len(same), size)]
        return groups

    def nets(self, k: int):
        """K networks to train as one group, on the engine of this run."""
        hp = self.hp
        return (SingleNet(LotteryNet(hp.arch, hp.dataset).to(self.device))
                if self.engine == "reference" else
                StackedNet(hp.arch, hp.dataset, k, self.device))

    def run_group(self, units: list, progress=None, should_stop=None) -> None:
        """Train `units` as one group and save each one's checkpoint and record."""
        hp, nets = self.hp, self.nets(len(units))
        starts = [starting_point(self.net, u, [self.checkpoint(d) for d in starts_from(u)])
                  for u in units]
        for j, (mask, initial, _) in enumerate(starts):
            nets.load(j, {n: m.to(self.device) for n, m in mask.items()},
                      {k: v.to(self.device) for k, v in initial.items()})
        # The dense run keeps its weights at iteration k for `rewind`, even if not asked now.
        snapshot_at = hp.rewind_iteration if units[0].round == 0 and hp.rewind_iteration else None
        state_file = self.store.group_state_path(units)
        try:
            results = train(nets, self.splits, iterations=hp.iterations,
                            learning_rate=hp.learning_rate, batch_size=hp.batch_size,
                            data_seeds=[derive_seed(hp.seed, u.trial, u.round, "data")
                                        for u in units], eval_every=hp.eval_every,
                            eval_limit=hp.eval_limit, start=starts[0][2],
                            snapshot_at=snapshot_at, progress=progress, precision=hp.precision,
                            state_file=state_file, should_stop=should_stop)
        except NonFiniteLoss as e:  # nothing of the group is kept; finished units stay
            raise LTHError(f"{units[e.network].name(hp.arch)} diverged: its {e.split} loss is "
                           f"{e.loss} at iteration {e.iteration}, so none of its group is "
                           f"recorded; lower learning_rate (or check the data)") from None
        for j, (unit, (mask, initial, _), result) in enumerate(zip(units, starts, results)):
            ckpt = self.make_checkpoint(unit, mask, initial, nets.export(j), result.snapshot,
                                        result.early_stop)
            self.store.write_checkpoint(unit, ckpt)
            if unit.round and STRATEGIES[unit.strategy].own_mask:
                self.store.write_mask(unit, ckpt["mask"])
            self._checkpoints[unit] = ckpt
            self.store.write_record(unit, ckpt["pm"], result.evals)
            self.finished.add(unit)
        self.store.log({"event": "group", "round": units[0].round,
                        "units": [u.name(hp.arch) for u in units],
                        "seconds": round(results[0].seconds, 1)})
        state_file.unlink(missing_ok=True)

    def make_checkpoint(self, unit: Unit, mask: dict, initial: dict, trained: dict,
                        rewind: dict | None = None, early_stop: tuple | None = None) -> dict:
        return checkpoint(self.hp, unit, percent_remaining(mask_counts(mask), self.net.sizes),
                          mask, initial, trained, rewind, early_stop)

    def initial_of(self, unit: Unit) -> dict:
        """A finished unit's initialization before masking (to restore its checkpoint), from
        the seeds or the checkpoints that are here (a rewound chain's dense network)."""
        starts = [self.checkpoint(d) if self.store.checkpoint_path(d, self.hp.iterations)
                  .exists() else None for d in starts_from(unit)]
        strategy = STRATEGIES[unit.strategy]
        return self.net.original_init(unit.trial) if unit.round == 0 else \
            strategy.init(self.net, unit, starts)

    def frontier(self) -> list:
        """The finished units that unfinished ones of the plan start from, in plan order."""
        units = plan(self.hp)
        needed = {d for u in units if not self.done(u) for d in starts_from(u)}
        return [u for u in units if u in needed and self.done(u)]

    def check_starting_points(self, todo: list) -> None:
        """Refuse, before anything is written, a unit that starts from a finished one whose
        checkpoint is kept neither in checkpoints/ nor in frontier/ (e.g. random_reinit added
        to a committed run of winning tickets lacks the masks of rounds already done), and a
        damaged file the run would read: those checkpoints, an interrupted group's state."""
        arch = self.hp.arch
        for unit in self.frontier():
            if self.store.checkpoint_path(unit, self.hp.iterations).exists():
                self.checkpoint(unit)  # read whole and checked (store.py), then kept
        for group in self.groups(todo):
            if self.store.group_state_path(group).exists():
                net = self.nets(len(group))
                read_state(self.store.group_state_path(group), net, adam(net.parameters(), 1.0))
        blocked = [(unit, needed) for unit in todo for needed in starts_from(unit)
                   if self.done(needed) and not (
                       self.store.checkpoint_path(needed, self.hp.iterations).exists()
                       or frontier_path(self.store, needed).exists())]
        if blocked:
            unit, needed = blocked[0]
            refused = sorted({u.strategy for u, _ in blocked}, key=RUN_ORDER.index)
            able = [s for s in RUN_ORDER if s not in refused and (
                s in self.hp.strategies or s == "winning_ticket")]
            here = f"add --strategies {' '.join(able)} to continue this run here, or " \
                if able else ""
            held = self.store.finished()
            kinds = sorted({u.strategy for u in held}, key=RUN_ORDER.index)
            rounds = sorted({u.round for u in held})
            raise LTHError(f"{self.dir} holds {len(held)} finished networks ({', '.join(kinds)}"
                           f"; rounds {rounds[0]} to {rounds[-1]}) and cannot train "
                           f"{', '.join(refused)}: "
                           f"{unit.name(arch)} starts from {needed.name(arch)}, which is "
                           f"finished but whose checkpoint the folder does not keep; "
                           f"{here}--out DIR to run the whole plan elsewhere")

    def run(self, progress: bool = True, provenance: dict | None = None, wait: bool = False,
            budget: TimeBudget | None = None, stop_after_groups: int | None = None,
            should_stop=None) -> Path:
        """Train every unit of the plan not yet finished; return the results folder. Nothing
        is written when nothing is left to do, or when the run is refused. Another process
        in the folder is waited for if `wait`, else refused. Under a `budget` the run stops
        cleanly when it is spent (`budget.spent` says where). Fault injection,
        for tests: `stop_after_groups` interrupts (KeyboardInterrupt) after that many groups,
        `should_stop(iteration)` inside a group (its state is saved, as at Ctrl-C)."""
        self._finished = None
        self.store.check_params(self.hp)
        if not self._todo():
            return self._current_csvs()
        self.check_starting_points(self._todo())
        if self.store.lock_path.exists():  # a process already here: refuse before loading data
            with self.store.lock(wait):
                pass
        self.splits  # missing data fails here, before anything is written
        with self.store.lock(wait):
            self._finished = None  # what another process finished before the lock was ours
            todo = self._todo()
            if not todo:
                return self._current_csvs()
            if self.store.committed:
                restore(self.store, self.net, self.initial_of, self.make_checkpoint)
            def started():  # written once a group trains: a run that trains nothing leaves
                self.store.write_params(self.hp, provenance or {})  # params.yaml as it was
                self.store.log({"event": "start", **(provenance or {})})

            self._train(self.groups(todo), progress, budget, stop_after_groups, should_stop,
                        started)
        return self.dir

    def _todo(self) -> list:
        return [u for u in plan(self.hp) if not self.done(u)]

    def _current_csvs(self) -> Path:
        """A run killed between a unit's record and the CSVs: bring them up to date."""
        if self.store.in_progress:
            self.store.write_csvs(self.hp)
        return self.dir

    def _start(self, unit: Unit) -> int:
        """The first iteration `unit` trains (late resetting starts at k)."""
        return STRATEGIES[unit.strategy].start_iteration(self.hp) if unit.round else 0

    def _train(self, groups: list, progress: bool, budget, stop_after_groups,
               should_stop, started) -> None:
        hp, planned = self.hp, len(plan(self.hp))
        done = planned - sum(map(len, groups))
        bar = RunProgress(f"{hp.arch} {hp.dataset} {hp.preset}", planned, done,
                          sum(len(g) * (hp.iterations - self._start(g[0])) for g in groups),
                          progress, logged_speed(self.store.provenance(), hp.iterations))
        try:
            for n, group in enumerate(groups):
                if stop_after_groups is not None and n == stop_after_groups:
                    raise KeyboardInterrupt
                if budget and not budget.fits(estimate(self.store.provenance(), len(group))):
                    budget.spent = f"before round {group[0].round} ({len(group)} networks)"
                    return
                stop = should_stop if budget is None else lambda i: (
                    budget.should_stop(i) or bool(should_stop and should_stop(i)))
                r = group[0].round
                pm = percent_remaining(self.net.counts(r), self.net.sizes)
                note = f"round {r} (Pm {pm:.1f}%): {len(group)} networks"
                if n == 0:
                    started()
                    if done:
                        bar.say(f"resuming from {self.dir}: {done} of {planned} networks "
                                f"finished; next {note}")
                try:
                    self.run_group(group, bar.group(note, len(group), self._start(group[0]),
                                                    hp.iterations), stop)
                except KeyboardInterrupt:
                    if not (budget and budget.left() <= budget.margin):
                        raise
                    budget.spent = f"inside round {r} (its state saved)"
                    return
                write_frontier(self.store, self.net, self.frontier(), self.checkpoint)
                self.store.write_csvs(hp)  # the CSVs always hold every finished unit
                bar.done(len(group))
        finally:
            bar.close()
            if self.store.in_progress:
                self.store.write_csvs(hp)


def run_experiment(hp: Hparams, out="results", data_dir=None, device="cpu",
                   progress: bool = True, engine: str = "stacked", max_models: int = 0,
                   time_budget: float | None = None) -> Path:
    """Run (or resume) the experiment `hp`, within `time_budget` seconds if given; return its
    results folder."""
    started, budget = time.time(), TimeBudget(time_budget) if time_budget else None
    experiment = Experiment(hp, out, data_dir, device, engine, max_models)
    experiment.store.check_params(hp)
    before = experiment.status()
    folder = experiment.run(progress, provenance(device, engine), budget=budget)
    if before.state == "complete":  # said even without progress bars: it is the answer
        print(complete_message(folder, before.done, hp.arch, hp.dataset, hp.preset))
        return folder
    if budget and budget.spent:
        status = experiment.status()
        tqdm.write(f"time budget of {time_budget:.0f} s spent: stopped {budget.spent}, "
                   f"{status.done} of {status.planned} networks finished; the same command "
                   f"resumes")
    if progress:
        tqdm.write(f"results in {folder} ({time.time() - started:.0f} s)")
    return folder
