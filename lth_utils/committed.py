"""What a results folder's committed files give back of each network, without training:
its mask (masks/, frontier/, or the seeds for random controls) and its initialization, redrawn
from the seeds bit for bit as the run drew it (`strategies.Network.init`); and what the folder
holds for the analyses of `anatomy.py`. Round 0 is the dense network (no mask file).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .analysis import FIG3_PM_LEVELS, match_pm_levels, pm_label
from .config import Hparams
from .errors import LTHError
from .frontier import frontier_path, read_entry
from .store import Store
from .strategies import STRATEGIES, Network, Unit, masked, starts_from


class _SeededNetwork(Network):
    """A Network that draws each trial's original initialization once and shares it (the
    analyses read many units of one trial): read it, do not modify it."""

    def __init__(self, hp):
        super().__init__(hp)
        self._originals = {}

    def original_init(self, trial: int) -> dict:
        if trial not in self._originals:
            self._originals[trial] = super().original_init(trial)
        return self._originals[trial]


@dataclass
class Run:
    """A results folder opened for analysis: its parameters, network and store."""
    folder: Path
    hp: Hparams
    net: Network
    store: Store

    @property
    def name(self) -> str:
        return self.folder.name

    def finished(self, strategy: str = "winning_ticket") -> list:
        """The finished units of `strategy` (round 0, the dense network, under the winning
        ticket), sorted by trial and round."""
        units = self.store.finished()
        return sorted((u for u in units if u.strategy == strategy),
                      key=lambda u: (u.trial, u.round))

    def pm(self, round_: int) -> float:
        """The network's Pm (%) after `round_` rounds, the same for every strategy."""
        return 100.0 * sum(self.net.counts(round_).values()) / sum(self.net.sizes.values())


def layer_labels(net: Network) -> dict:
    """A reader's name for each prunable layer: "fc 784-300", "conv 3-64", the last "output"."""
    names = list(net.shapes)
    labels = {}
    for name, shape in net.shapes.items():
        kind = "output" if name == names[-1] else "fc" if len(shape) == 2 else "conv"
        labels[name] = f"{kind} {shape[1]}-{shape[0]}"
    return labels


def open_run(folder) -> Run:
    """The run in `folder` (its params.yaml read and checked), or one LTHError line."""
    folder = Path(folder)
    hp = Store(folder).read_hparams()
    return Run(folder, hp, _SeededNetwork(hp), Store(folder, hp.arch, hp.dataset))


class _Committed:
    """A finished unit's checkpoint as far as the committed files give it back: its initial
    parameters and its mask. Its trained (or rewound) weights are in the checkpoint only."""

    def __init__(self, run: Run, unit: Unit):
        self.run, self.unit = run, unit

    def __getitem__(self, key: str):
        if key == "initial":
            return masked(initialization(self.run, self.unit), mask(self.run, self.unit))
        kept = mask(self.run, self.unit) if key == "mask" else None
        if kept is not None:
            return kept
        raise LTHError(f"{self.run.name} does not keep {self.unit.name(self.run.hp.arch)}'s "
                       f"checkpoint, whose {key!r} entry this needs")


def _starts(run: Run, unit: Unit) -> list:
    return [_Committed(run, u) for u in starts_from(unit)]


def initialization(run: Run, unit: Unit) -> dict:
    """`unit`'s initial parameters before masking ({parameter key: tensor}, as a checkpoint's
    `initial` before masking), redrawn from the seeds by its strategy's own function
    (`strategies.TABLE`); LTHError where that function needs trained weights (late resetting
    to an iteration k > 0). The trial's original initialization is drawn once and shared:
    read it, do not modify it."""
    if unit.round == 0:
        return run.net.original_init(unit.trial)
    return STRATEGIES[unit.strategy].init(run.net, unit, _starts(run, unit))


def mask(run: Run, unit: Unit) -> dict | None:
    """`unit`'s mask ({layer: bool tensor}) from the committed files, or None where none is
    kept. Round 0 is dense; a strategy's `mask_from` says the rest: another strategy's mask
    (random reinitialization takes the winning ticket's), its seed (random sparse), or its own,
    read from masks/ or frontier/."""
    if unit.round == 0:
        return run.net.dense_mask()
    strategy = STRATEGIES[unit.strategy]
    if strategy.mask_from == "seed":
        return strategy.mask(run.net, unit, _starts(run, unit))
    if not strategy.own_mask:
        return mask(run, Unit(strategy.mask_from, unit.trial, unit.round))
    if run.store.mask_path(unit).is_file():
        return run.store.read_mask(unit, run.net.shapes)
    if frontier_path(run.store, unit).is_file():
        return read_entry(frontier_path(run.store, unit), run.store, run.net)[1]
    return None


def available_rounds(run: Run, strategy: str = "winning_ticket", trial: int | None = None):
    """The rounds (of `trial`, else of any trial) whose mask the committed files give back."""
    units = [u for u in run.finished("winning_ticket") if trial is None or u.trial == trial]
    found = {u.round for u in units if mask(run, Unit(strategy, u.trial, u.round)) is not None}
    return sorted(found)


def inventory(run: Run) -> dict:
    """What `run`'s folder holds for this analysis: trials, rounds finished (winning tickets),
    rounds whose masks are kept, checkpoints on disk, whether movement.csv is there."""
    finished = run.finished("winning_ticket")
    last = max((u.round for u in finished), default=0)
    masks = [r for r in available_rounds(run) if r > 0]  # round 0 is dense: no file
    on_disk = sum(run.store.checkpoint_path(u, run.hp.iterations).is_file()
                  for u in run.store.finished())
    return {"run": run.name, "network": f"{run.hp.arch} on {run.hp.dataset}",
            "trials": len({u.trial for u in finished}), "rounds finished": last,
            "Pm reached (%)": round(run.pm(last), 1),
            "masks kept (rounds)": ", ".join(map(str, masks)) or "none",
            "checkpoints on disk": on_disk,
            "movement.csv": (run.folder / "movement.csv").is_file()}


def pick_rounds(run: Run, available, levels=FIG3_PM_LEVELS) -> tuple:
    """The rounds to show: ({Pm label: round} of the `levels` (Figure 3's by default) whose
    round is in `available`, and the deepest available round too if it is none of them;
    [sentences naming the levels left out and why])."""
    ladder = {r: run.pm(r) for r in range(run.hp.rounds + 1)}
    found, unreachable = match_pm_levels(ladder, levels)
    shown = {pm_label(level): r for level, r in found.items() if r in available}
    waiting = [pm_label(level) for level, r in found.items() if r not in available]
    if available and max(available) not in shown.values():
        shown[pm_label(ladder[max(available)])] = max(available)
    notes = []
    if waiting:
        notes.append(f"Pm = {', '.join(waiting)}%: no mask of its round in {run.name} (not "
                     f"trained, or not committed, yet)")
    if unreachable:
        notes.append(f"Pm = {', '.join(pm_label(p) for p in unreachable)}%: beyond this "
                     f"run's {run.hp.rounds} rounds")
    return dict(sorted(shown.items(), key=lambda kv: kv[1])), notes
