"""Hyperparameters of one experiment and the presets (params/*.yaml) that set them.

`Hparams` defaults come from the paper (paper.py's Figure 2 table and Section 2); a preset
overrides only what it changes, at its top level for every architecture or under
`architectures: {lenet: {...}}` for one. Every deviation from the paper is one of these fields.
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import paper
from .data import NORMALIZATIONS
from .errors import LTHError
from .training import PRECISIONS

PRESETS_DIR = Path(__file__).resolve().parent.parent / "params"
CLAIMS_FILE = PRESETS_DIR / "claims.yaml"  # the paper's claims (lth_utils.claims), not a preset
STRATEGIES = ("winning_ticket", "random_reinit", "random_sparse", "oneshot", "rewind")


@dataclass(frozen=True)
class Hparams:
    """Everything that defines one experiment. `Hparams.paper(arch)` holds the paper's values."""
    arch: str
    dataset: str
    # Training (Figure 2): Adam at this learning rate, `batch_size` examples per iteration.
    iterations: int
    learning_rate: float
    batch_size: int
    # Pruning (Figure 2): fraction of each layer's remaining weights removed per round.
    rounds: int
    prune_rate_conv: float
    prune_rate_fc: float
    prune_rate_output: float
    datasets: tuple                # datasets `arch` may train on (the paper's one by default)
    preset: str = "paper"
    # Protocol (Section 2, Appendix G).
    trials: int = paper.TRIALS
    strategies: tuple = ("winning_ticket", "random_reinit", "random_sparse", "oneshot")
    rewind_iteration: int = 0      # k of the `rewind` strategy (late resetting)
    eval_every: int = paper.EVAL_EVERY
    eval_limit: int = 0            # evaluate on the first N examples of each split; 0: all
    validation_size: int = paper.VALIDATION_SIZE
    normalization: str = "standardize"
    precision: str = "float32"     # "tf32" (CUDA) or "bfloat16" autocast: faster, not the paper's
    seed: int = 0

    @classmethod
    def paper(cls, arch: str, dataset: str | None = None) -> "Hparams":
        """The paper's protocol for `arch` (Figure 2), on its paper dataset unless given."""
        spec = paper.architecture(arch)
        return cls(arch=arch, dataset=dataset or spec.dataset, iterations=spec.iterations,
                   learning_rate=spec.learning_rate, batch_size=spec.batch_size,
                   rounds=spec.rounds, prune_rate_conv=spec.prune_rate_conv,
                   prune_rate_fc=spec.prune_rate_fc, prune_rate_output=spec.prune_rate_output,
                   datasets=(spec.dataset,))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type is tuple and isinstance(value, (list, tuple)):
                object.__setattr__(self, f.name, tuple(value))
            elif f.type is float and isinstance(value, (int, str)) and not isinstance(value, bool):
                try:
                    object.__setattr__(self, f.name, float(value))
                except ValueError:
                    raise LTHError(f"{f.name} must be a number, not {value!r}") from None
            elif f.type in (int, str) and type(value) is not f.type:
                raise LTHError(f"{f.name} must be {'an integer' if f.type is int else 'a string'}"
                               f", not {value!r}")
            elif f.type is tuple and not isinstance(value, tuple):
                raise LTHError(f"{f.name} must be a list, not {value!r}")
        paper.architecture(self.arch)
        paper.dataset_shape(self.dataset)
        self._validate()

    def _validate(self):
        if self.dataset not in self.datasets:
            raise LTHError(f"{self.arch} is not trained on {self.dataset} in preset "
                           f"{self.preset!r} (the paper trains {self.arch} on "
                           f"{', '.join(self.datasets)})")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise LTHError(f"unknown strategy {unknown[0] if unknown else '(none)'}; "
                           f"choose from {', '.join(STRATEGIES)}")
        if self.precision not in PRECISIONS:
            raise LTHError(f"unknown precision {self.precision!r}; "
                           f"choose one of {', '.join(PRECISIONS)}")
        if self.normalization not in NORMALIZATIONS:
            raise LTHError(f"unknown normalization {self.normalization!r}; "
                           f"choose one of {', '.join(NORMALIZATIONS)}")
        positive = ("iterations", "batch_size", "trials", "eval_every", "validation_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise LTHError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.learning_rate <= 0 or self.rounds < 0 or self.eval_limit < 0:
            raise LTHError("learning_rate must be positive, rounds and eval_limit non-negative")
        if not 0 <= self.rewind_iteration < self.iterations:
            raise LTHError(f"rewind_iteration must be in [0, iterations), "
                           f"not {self.rewind_iteration}")
        for name in ("prune_rate_conv", "prune_rate_fc", "prune_rate_output"):
            if not 0 <= getattr(self, name) < 1:
                raise LTHError(f"{name} must be in [0, 1), not {getattr(self, name)}")

    @property
    def prune_rates(self) -> dict:
        return {"conv": self.prune_rate_conv, "fc": self.prune_rate_fc,
                "output": self.prune_rate_output}

    def science(self) -> dict:
        """The fields that change a run's numbers (not which trials or strategies it runs)."""
        d = dataclasses.asdict(self)
        for name in ("preset", "trials", "strategies", "datasets"):
            d.pop(name)
        return d

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["strategies"], d["datasets"] = list(self.strategies), list(self.datasets)
        return d


OVERRIDABLE = {f.name for f in dataclasses.fields(Hparams)} - {"arch", "dataset", "preset"}


def available_presets() -> list:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p != CLAIMS_FILE)


def read_preset(name_or_path: str) -> dict:
    """A preset by name (params/NAME.yaml) or path, checked for unknown keys."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESETS_DIR / f"{name_or_path}.yaml"
    if not path.exists() or path.resolve() == CLAIMS_FILE:
        raise LTHError(f"unknown preset {name_or_path!r}; choose one of "
                       f"{', '.join(available_presets())} or give a .yaml path")
    try:
        preset = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LTHError(f"preset {path} is not valid YAML{where}") from None
    if not isinstance(preset, dict):
        raise LTHError(f"preset {path} must be a mapping of keys to values")
    per_arch = preset.get("architectures", {}) or {}
    if not isinstance(per_arch, dict):
        raise LTHError(f"preset {path}: 'architectures' must map architecture names to keys")
    for scope, keys in [("", preset), *[(f"architectures.{a}.", v) for a, v in per_arch.items()]]:
        if scope and scope.split(".")[1] not in paper.FIGURE_2:
            raise LTHError(f"preset {path}: unknown architecture {scope.split('.')[1]!r}")
        if not isinstance(keys, dict):
            raise LTHError(f"preset {path}: {scope or 'top level'} must be a mapping")
        allowed = OVERRIDABLE | ({"description", "architectures"} if not scope else set())
        for key in keys:
            if key not in allowed:
                raise LTHError(f"preset {path}: unknown key {scope}{key}; known keys: "
                               f"{', '.join(sorted(OVERRIDABLE))}")
    return preset


def resolve(arch: str = "lenet", dataset: str | None = None, preset: str = "paper",
            **overrides) -> Hparams:
    """The paper's hyperparameters for `arch`, then `preset`'s changes, then `overrides`."""
    base = Hparams.paper(arch)
    values = read_preset(preset)
    per_arch = (values.pop("architectures", None) or {}).get(arch, {}) or {}
    values.pop("description", None)
    values.update(per_arch)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(base, dataset=dataset or base.dataset, preset=Path(preset).stem,
                               **values)
