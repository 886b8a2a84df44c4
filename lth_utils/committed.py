"""What a results folder's committed files give back of each network, without training:
its mask (masks/, frontier/, or the seeds for random controls) and its initialization, redrawn
from the seeds bit for bit as the run drew it (`strategies.Network.init`); and what the folder
holds for the analyses of `anatomy.py`. Round 0 is the dense network (no mask file).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .analysis import FIG3_PM_LEVELS, match_pm_levels, pm_label
from .config import Hparams
from .errors import LTHError
from .frontier import frontier_path, read_entry
from .store import Store
from .strategies import STRATEGIES, Network, Unit

# Strategies whose initialization the seeds alone give back (rewind needs the dense run's
# weights at iteration k > 0, which only a checkpoint holds).
SEEDED = ("winning_ticket", "oneshot", "random_reinit", "random_sparse")


@dataclass
class Run:
    """A results folder opened for analysis: its parameters, network and store."""
    folder: Path
    hp: Hparams
    net: Network
    store: Store
    originals: dict = field(default_factory=dict)  # {trial: original initialization}, drawn once

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
    return Run(folder, hp, Network(hp), Store(folder, hp.arch, hp.dataset))


def initialization(run: Run, unit: Unit) -> dict:
    """`unit`'s initial parameters before masking, redrawn from the seeds: the trial's original
    initialization for winning tickets, one-shot and round 0, a fresh one for the random
    controls ({parameter key: tensor}, as a checkpoint's `initial` before masking). The
    original one is drawn once per trial and shared: read it, do not modify it."""
    if unit.round == 0 or unit.strategy in ("winning_ticket", "oneshot") or (
            unit.strategy == "rewind" and run.hp.rewind_iteration == 0):  # k = 0: the ticket
        if unit.trial not in run.originals:
            run.originals[unit.trial] = run.net.original_init(unit.trial)
        return run.originals[unit.trial]
    if unit.strategy not in SEEDED:
        raise LTHError(f"{unit.strategy} starts from the dense run's weights at iteration "
                       f"{run.hp.rewind_iteration}, which the seeds do not give back")
    return STRATEGIES[unit.strategy].init(run.net, unit, [])


def mask(run: Run, unit: Unit) -> dict | None:
    """`unit`'s mask ({layer: bool tensor}) from the committed files, or None where none is
    kept: round 0 is dense; random reinitialization has the winning ticket's mask; a random
    sparse mask comes from its seed; the others are read from masks/ or frontier/."""
    if unit.round == 0:
        return run.net.dense_mask()
    if unit.strategy == "random_reinit":
        return mask(run, Unit("winning_ticket", unit.trial, unit.round))
    if unit.strategy == "random_sparse":
        return STRATEGIES["random_sparse"].mask(run.net, unit, [])
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
