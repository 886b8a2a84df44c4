"""A results folder read into pandas, and what it holds, for the notebooks and the report.

Everything here reads what `run_experiment` writes (README.md, "Results"): `summary.csv`,
`metrics.csv` and `params.yaml` of `<results>/<arch>_<dataset>_<preset>/`. Nothing here
trains, prunes or builds a model (`lth_utils.notebook` runs what a notebook lacks). What a
run is, is read from its folder, never from the preset: `describe_run` says which strategies,
trials and rounds a folder holds, and how many of its run's networks are done (`run_status`, the
one count of "done of planned"). The tables and numbers made from a `Results` are
`analysis.py`'s.

Round 0 is the dense network, trained once per trial as the winning ticket's round 0. It is
the Pm = 100% point of every strategy, so `load_results` copies those rows to each strategy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import Hparams
from .errors import LTHError
from .experiment import plan
from .paper import FIGURE_2
from .presets import resolve
from .formats import METRICS_COLUMNS, SUMMARY_COLUMNS
from .store import Store
from .tables import Tables
from .strategies import TABLE

ARCH_NAMES = {name: spec.name for name, spec in FIGURE_2.items()}
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}

# The paper's names for the strategies (Figures 1, 3, 4 and 5), in legend order, and short
# names for tables: views of the strategies' table (strategies.py).
STRATEGY_LABELS = {s.name: s.label for s in TABLE}
SHORT_NAMES = {s.name: s.short for s in TABLE}


def hparams(arch: str, preset: str, trials: int | None = None, strategies=None,
            dataset: str | None = None) -> Hparams:
    """The resolved parameters of one experiment, keeping only the preset's strategies
    among `strategies` (a notebook asks for what it plots; the preset says what exists)."""
    base = resolve(arch, dataset, preset, trials=trials)
    if strategies is not None:
        wanted = [s for s in base.strategies if s in strategies] or ["winning_ticket"]
        base = resolve(arch, dataset, preset, trials=trials, strategies=wanted)
    return base


# --- reading --------------------------------------------------------------------------------

def read_params(folder) -> dict:
    """params.yaml of a results folder (resolved parameters and provenance)."""
    return Store(folder).read_params()


def read_csv(folder, name: str) -> pd.DataFrame:
    """summary.csv or metrics.csv of a results folder (or its committed `.gz` copy)."""
    return pd.read_csv(Tables(folder).csv_path(name))


def with_dense(df: pd.DataFrame, strategies) -> pd.DataFrame:
    """Copy the dense rows (winning ticket, round 0) to every strategy in `strategies` that
    lacks its own round 0: the dense network is every strategy's Pm = 100% point."""
    dense = df[(df["strategy"] == "winning_ticket") & (df["round"] == 0)]
    extra = []
    for s in strategies:
        if s != "winning_ticket" and not ((df["strategy"] == s) & (df["round"] == 0)).any():
            extra.append(dense.assign(strategy=s))
    return pd.concat([df, *extra], ignore_index=True) if extra else df.copy()


def own_strategies(summary: pd.DataFrame) -> list:
    """The strategies with networks of their own in `summary` (the winning ticket's round 0,
    the dense network, is every strategy's first point but the winning ticket's own)."""
    s = summary
    own = set(s.loc[(s["round"] > 0) | (s["strategy"] == "winning_ticket"), "strategy"])
    return [name for name in STRATEGY_LABELS if name in own]


@dataclass
class Results:
    """One experiment's results, restricted to the trials and strategies of `hp`."""
    hp: Hparams
    folder: Path
    summary: pd.DataFrame
    metrics: pd.DataFrame
    params: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{ARCH_NAMES[self.hp.arch]} on {DATASET_NAMES[self.hp.dataset]}"

    @property
    def strategies(self) -> list:
        """The strategies with networks of their own, in legend order. The dense rows copied to
        every strategy (its Pm = 100% point) do not count: a control that has not run is
        neither drawn nor named."""
        return own_strategies(self.summary)

    @property
    def trials(self) -> int:
        return int(self.summary["trial"].nunique())

    @property
    def ran(self) -> Hparams:
        """The parameters of the run its folder records (params.yaml), else `hp`."""
        return Hparams(**self.params["hparams"]) if self.params else self.hp

    @property
    def empty(self) -> bool:
        """Whether the folder holds no finished network (or does not exist)."""
        return self.summary.empty


def load_results(folder, hp: Hparams | None = None) -> Results:
    """Read a results folder into a `Results`, as far as it goes; with `hp`, keep only its
    trials and strategies (a folder may hold more: other notebooks or earlier runs may have
    added to it), and a folder without results (or none at all) is an empty `Results`.
    Without `hp`, the parameters are the folder's params.yaml (LTHError if it has none)."""
    folder = Path(folder)
    store = Store(folder)
    params = read_params(folder) if hp is None or store.has_params else {}
    if hp is None:
        hp = Hparams(**params["hparams"])
    if not store.has_results:
        return Results(hp, folder, pd.DataFrame(columns=SUMMARY_COLUMNS),
                       pd.DataFrame(columns=METRICS_COLUMNS), params)
    summary, metrics = read_csv(folder, "summary.csv"), read_csv(folder, "metrics.csv")
    strategies = ["winning_ticket", *[s for s in hp.strategies if s != "winning_ticket"]]
    keep = lambda df: df[df["strategy"].isin(strategies) & (df["trial"] < hp.trials)]  # noqa: E731
    return Results(hp, folder, with_dense(keep(summary), strategies),
                   with_dense(keep(metrics), strategies), params)


def complete(folder, hp: Hparams) -> bool:
    """Whether `folder` holds every unit of `hp` (its trials, strategies and rounds) with the
    same science: then nothing needs training, even without checkpoints (committed results)."""
    store = Store(folder, hp.arch)
    try:
        return (store.status(plan(hp)).state == "complete"
                and store.read_hparams().science() == hp.science())
    except LTHError:
        return False


def run_status(folder, hp: Hparams, strategies=None):
    """How far `folder` is with the units of `hp` (of `strategies` only, if given: the dense
    network always counts): a `store.Status` (state, done, planned)."""
    units = [u for u in plan(hp) if strategies is None or u.round == 0
             or u.strategy in strategies]
    return Store(folder, hp.arch).status(units)


def folder_status(folder, hp: Hparams):
    """How far `folder` is with the run it records (params.yaml: that run's own trials,
    strategies and rounds), else with the whole plan of `hp`: the one "done of planned" that
    the notebooks, build.py and the README give (Conv-2: 7 of 19, not 7 of 185)."""
    store = Store(folder)
    return run_status(folder, store.read_hparams() if store.has_params else hp)


# --- what a folder holds -------------------------------------------------------------------

def behind(summary: pd.DataFrame) -> str:
    """The strategies whose pruned rounds stop short of the furthest strategy's, each group
    with its last round: 'one-shot and random sparse to round 8' ('' when none is behind)."""
    last = summary[summary["round"] > 0].groupby("strategy")["round"].max()
    return "; ".join(f"{' and '.join(SHORT_NAMES[n] for n in sorted(names))} to round {k}"
                     for k, names in last[last < last.max()].groupby(last).groups.items())


def spans(numbers) -> str:
    """[0, 1, 2, 3, 6] -> '0 to 3, 6': integers as runs of consecutive values."""
    numbers, parts = sorted(set(numbers)), []
    for n in numbers:
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a} to {b}" for a, b in parts)


@dataclass(frozen=True)
class RunDescription:
    """What one results folder holds, read from its files (all of it, whatever a notebook
    reads of it): the strategies with networks of their own, the trials and rounds present,
    Pm down to `pm_min` (percent), and `done` of the `planned` networks of the run its
    params.yaml records (of the asked-for plan if it has none). `missing` names, in words,
    what the asked-for plan has and the folder lacks."""
    title: str
    preset: str
    folder: Path
    strategies: tuple
    trials: tuple
    rounds: tuple
    planned_rounds: int
    pm_min: float | None
    done: int
    planned: int
    missing: tuple

    def sentence(self) -> str:
        where = f"`{self.folder.parent.name}/{self.folder.name}/`"
        head = f"{self.title}, preset `{self.preset}` ({where}): "
        if not self.rounds:
            # with no rounds, `missing` is the planned strategies, in words
            return head + (f"no results yet (0 of {self.planned} planned networks: "
                           f"{', '.join(self.missing)}).")
        n = len(self.trials)
        rounds = (f"rounds {spans(self.rounds)} of {self.planned_rounds} (Pm 100 to "
                  f"{self.pm_min:.1f}%)" if self.rounds != (0,) else
                  f"round 0 of {self.planned_rounds} (the dense network, Pm 100%)")
        held = (f"{', '.join(SHORT_NAMES[s] for s in self.strategies)}; "
                f"{n} trial{'s' * (n != 1)} ({spans(self.trials)}); {rounds}; "
                f"{self.done} of {self.planned} networks of its run.")
        return head + held + (f" Not in this folder: {'; '.join(self.missing)}."
                              if self.missing else "")


def describe_run(results: Results) -> RunDescription:
    """The `RunDescription` of the folder of `results` (see `load_results`), against the plan
    of `results.hp`; no Pm when the folder holds no results."""
    hp, folder = results.hp, Path(results.folder)
    s = read_csv(folder, "summary.csv") if Store(folder).has_results else results.summary
    ran = results.ran
    status = folder_status(folder, hp)
    strategies = own_strategies(s)
    trials = tuple(sorted(int(t) for t in s["trial"].unique()))
    rounds = tuple(sorted(int(r) for r in s["round"].unique()))
    missing = [SHORT_NAMES[x] for x in STRATEGY_LABELS
               if x in hp.strategies and x not in strategies]
    if rounds:
        lacking = [("trial", set(range(hp.trials)) - set(trials)),
                   ("round", set(range(hp.rounds + 1)) - set(rounds))]
        missing += [f"{word}{'s' * (len(v) > 1)} {spans(v)}" for word, v in lacking if v]
    return RunDescription(results.title, hp.preset, folder, tuple(strategies), trials,
                          rounds, ran.rounds,
                          float(s["pm"].min()) if rounds else None, status.done,
                          status.planned, tuple(missing))
