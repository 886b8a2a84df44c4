"""Hyperparameters of one experiment: `Hparams`, the types of its fields and their checks.

`Hparams` defaults come from the paper (paper.py's Figure 2 table and Section 2); a preset
(presets.py) overrides only what it changes. Every deviation from the paper is one of these
fields.

`Hparams` is a frozen pydantic dataclass, validated strictly whenever one is made (including by
`dataclasses.replace`): a boolean is never a number or a string, a string is never a number, an
integer field takes integers only (2.0 is refused), numbers are finite, and every range and
cross-field rule below holds, so a bad preset is refused before anything is written. Every
problem is one `LTHError` line naming the field.

This module imports no torch (only its checks do, when an `Hparams` is made): presets.py
imports it, and the command line's --help lists the presets without torch.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from . import paper
from .errors import LTHError


STRATEGIES = ("winning_ticket", "random_reinit", "random_sparse", "oneshot", "rewind")


def _list_to_tuple(value):
    return tuple(value) if isinstance(value, list) else value


Names = Annotated[tuple[str, ...], BeforeValidator(_list_to_tuple)]  # a YAML list of strings


@dataclass(frozen=True, config=ConfigDict(strict=True, allow_inf_nan=False, extra="forbid"))
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
    datasets: Names                # datasets `arch` may train on (the paper's one by default)
    preset: str = "paper"
    # Protocol (Section 2, Appendix G).
    trials: int = paper.TRIALS
    strategies: Names = ("winning_ticket", "random_reinit", "random_sparse", "oneshot")
    rewind_iteration: int = 0      # k of the `rewind` strategy (late resetting)
    eval_every: int = paper.EVAL_EVERY
    eval_limit: int = 0            # evaluate on the first N examples of each split; 0: all
    validation_size: int = paper.VALIDATION_SIZE
    normalization: str = dataclasses.field(kw_only=True)  # paper.normalization(dataset)
    precision: str = "float32"     # "tf32" (CUDA) or "bfloat16" autocast: faster, not the paper's
    seed: int = 0

    @classmethod
    def paper(cls, arch: str, dataset: str | None = None) -> Hparams:
        """The paper's protocol for `arch` (Figure 2), on its paper dataset unless given."""
        spec = paper.architecture(arch)
        dataset = dataset or spec.dataset
        return cls(arch=arch, dataset=dataset, iterations=spec.iterations,
                   learning_rate=spec.learning_rate, batch_size=spec.batch_size,
                   rounds=spec.rounds, prune_rate_conv=spec.prune_rate_conv,
                   prune_rate_fc=spec.prune_rate_fc, prune_rate_output=spec.prune_rate_output,
                   datasets=(spec.dataset,),
                   normalization=paper.normalization(dataset))

    @model_validator(mode="wrap")
    @classmethod
    def _one_line_errors(cls, value, handler):
        """Type errors as one LTHError line (pydantic's ValidationError never escapes)."""
        try:
            return handler(value)
        except ValidationError as e:
            raise LTHError("; ".join(_describe(err) for err in e.errors())) from None

    def __post_init__(self):  # runs once every field has its type
        _check(self)

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


FIELDS = tuple(f.name for f in dataclasses.fields(Hparams))
OVERRIDABLE = set(FIELDS) - {"arch", "dataset", "preset"}

_KINDS = {"int_type": "an integer", "float_type": "a number",
          "finite_number": "a finite number", "string_type": "a string",
          "tuple_type": "a list", "bool_type": "true or false"}


def _describe(err: dict) -> str:
    """One pydantic error as 'FIELD must be KIND, not VALUE'."""
    field = "".join(f"[{p}]" if isinstance(p, int) else ("." if i else "") + str(p)
                    for i, p in enumerate(err["loc"])) or "parameters"
    kind, value = err["type"], err.get("input")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if kind == "float_type" and isinstance(value, int) and not isinstance(value, bool):
        kind = "finite_number"  # an integer too large for a float
    if kind in _KINDS:
        why = " (true and false are booleans)" if isinstance(value, bool) else ""
        return f"{field} must be {_KINDS[kind]}, not {shown}{why}"
    if kind in ("missing", "missing_argument"):
        return f"{field} is missing"
    if kind in ("unexpected_keyword_argument", "unexpected_positional_argument"):
        return f"unknown parameter {field if field.isidentifier() else repr(field)}; " \
               f"known: {', '.join(FIELDS)}"
    return f"{field}: {err['msg']}"


# --- checks that need more than a field's type -----------------------------------------------

@functools.lru_cache(maxsize=None)
def prunable_layers(arch: str, dataset: str) -> dict:
    """{layer name: (kind, weights)} of `arch` on `dataset`, as models.LotteryNet builds it
    (names are its layer indices, kinds 'conv'/'fc'/'output'), from paper.py alone."""
    spec = paper.architecture(arch)
    channels, height, width, classes = paper.dataset_shape(dataset)
    layers, index = {}, 0
    for v in spec.convs:
        if v == "M":
            height, width, index = height // 2, width // 2, index + 1
        else:
            layers[str(index)] = ("conv", channels * v * 9)
            channels, index = v, index + 2
    features, index = channels * height * width, index + 1  # Flatten
    for v in spec.fcs:
        layers[str(index)] = ("fc", features * v)
        features, index = v, index + 2
    layers[str(index)] = ("output", features * classes)
    return layers


def _first_empty_round(hp: Hparams) -> tuple | None:
    """(round, layer, kind) of the first planned round that prunes a layer to nothing."""
    from .pruning import layer_counts, layer_rates  # imports torch: only when validating

    layers = prunable_layers(hp.arch, hp.dataset)
    rates = layer_rates(hp.arch, {n: kind for n, (kind, _) in layers.items()}, hp.prune_rates)
    counts = {n: size for n, (_, size) in layers.items()}
    for r in range(1, hp.rounds + 1):
        after = layer_counts(counts, rates, 1)
        empty = [n for n, c in after.items() if c < 1]
        if empty:
            return r, empty[0], layers[empty[0]][0]
        if after == counts:  # nothing changes any more: no later round empties a layer
            return None
        counts = after
    return None


def _choices(what: str, value, allowed) -> LTHError:
    return LTHError(f"unknown {what} {value!r}; choose one of {', '.join(allowed)}")


def _check(hp: Hparams) -> None:
    """Names, ranges and cross-field rules, each failure one LTHError line."""
    from .data import EXPECTED  # imports torch: only when validating
    from .evaluation import PRECISIONS

    paper.architecture(hp.arch)
    for name in (hp.dataset, *hp.datasets):
        paper.dataset_shape(name)
    if hp.dataset not in hp.datasets:
        raise LTHError(f"{hp.arch} is not trained on {hp.dataset} in preset {hp.preset!r} "
                       f"(the paper trains {hp.arch} on {', '.join(hp.datasets) or 'nothing'})")
    unknown = [s for s in hp.strategies if s not in STRATEGIES]
    if unknown or not hp.strategies:
        raise LTHError(f"unknown strategy {unknown[0] if unknown else '(none)'}; "
                       f"choose from {', '.join(STRATEGIES)}")
    twice = sorted({s for s in hp.strategies if hp.strategies.count(s) > 1})
    if twice:
        raise LTHError(f"strategies names {', '.join(twice)} more than once")
    if hp.precision not in PRECISIONS:
        raise _choices("precision", hp.precision, PRECISIONS)
    paper.normalization(hp.dataset, hp.normalization)
    for name in ("iterations", "batch_size", "trials", "eval_every", "validation_size"):
        if getattr(hp, name) < 1:
            raise LTHError(f"{name} must be at least 1, not {getattr(hp, name)}")
    for name in ("rounds", "eval_limit"):
        if getattr(hp, name) < 0:
            raise LTHError(f"{name} must be at least 0, not {getattr(hp, name)}")
    if not hp.learning_rate > 0:
        raise LTHError(f"learning_rate must be positive, not {hp.learning_rate}")
    if not 0 <= hp.rewind_iteration < hp.iterations:
        raise LTHError(f"rewind_iteration must be in [0, iterations) = [0, {hp.iterations}), "
                       f"not {hp.rewind_iteration}")
    for name in ("prune_rate_conv", "prune_rate_fc", "prune_rate_output"):
        if not 0 <= getattr(hp, name) < 1:
            raise LTHError(f"{name} must be in [0, 1), not {getattr(hp, name)}")
    n_train = EXPECTED[hp.dataset][0]
    if hp.validation_size >= n_train:
        raise LTHError(f"validation_size must leave training examples: below {n_train} "
                       f"({hp.dataset}'s training set), not {hp.validation_size}")
    if hp.batch_size > n_train - hp.validation_size:
        raise LTHError(f"batch_size must fit in the training split: at most "
                       f"{n_train - hp.validation_size} ({hp.dataset}'s {n_train} training "
                       f"examples minus validation_size {hp.validation_size}), "
                       f"not {hp.batch_size}")
    empty = _first_empty_round(hp)
    if empty:
        r, layer, kind = empty
        size = prunable_layers(hp.arch, hp.dataset)[layer][1]
        raise LTHError(f"rounds must be at most {r - 1} with these rates: round {r} would prune "
                       f"{hp.arch}'s {kind} layer layers.{layer} ({size} weights, "
                       f"prune_rate_{kind} {hp.prune_rates[kind]}) to nothing")
