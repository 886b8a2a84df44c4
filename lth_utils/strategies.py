"""The strategies as a table: what a winning ticket is, and each control it is compared with.

A unit is one network: (strategy, trial, round). Round 0 is the dense network, trained once per
trial as the winning ticket's round 0 and the Pm = 100% point of every strategy. A strategy's
round r > 0 starts from earlier units (`starts_from`) and turns their checkpoints into a mask
and an initialization with two pure functions, handed those checkpoints (no file access here):

  winning_ticket  iterative magnitude pruning; survivors reset to the original initialization
                  (Section 2, Figures 1, 3-5)
  random_reinit   the winning ticket's mask with a fresh random initialization (Figures 3-5)
  random_sparse   a random mask with the same per-layer counts, fresh initialization (Fig. 4)
  oneshot         the dense network trained once, pruned straight to each round's counts,
                  reset to the original initialization (Figure 4)
  rewind          iterative pruning on its own trajectory, survivors reset to the dense run's
                  weights at iteration k (late resetting, Frankle et al. 2019); k = 0 is the
                  winning ticket

A new control is one `Strategy` entry and its two functions, and its name in
`config.STRATEGIES`; run_data (labels, short names) and figure_style (line styles) read it
from `TABLE`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import torch

from .config import STRATEGIES as STRATEGY_NAMES
from .models import LotteryNet
from .pruning import layer_counts, layer_rates, prune_layerwise, prune_to_counts, random_masks


def derive_seed(*parts) -> int:
    """A 63-bit seed from any tuple of names and numbers, the same on every platform."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class Unit:
    """One network of an experiment: `strategy` at pruning `round` of `trial`."""
    strategy: str
    trial: int
    round: int

    def name(self, arch: str) -> str:
        return f"{arch}_{self.strategy}_trial{self.trial}_round{self.round}"


class Network:
    """What the strategies' functions know of the network: its prunable layers' shapes and
    sizes, Figure 2's per-layer rates as set by `hp`, and its seeded initializations."""

    def __init__(self, hp):
        model = LotteryNet(hp.arch, hp.dataset)
        self.hp = hp
        self.shapes = {n: w.shape for n, w in model.weights().items()}
        self.sizes = {n: w.numel() for n, w in model.weights().items()}
        self.rates = layer_rates(hp.arch, model.layer_kinds(), hp.prune_rates)

    def counts(self, round_: int) -> dict:
        """Weights remaining per layer after `round_` rounds: the same for every strategy."""
        return layer_counts(self.sizes, self.rates, round_)

    def init(self, *seed_parts) -> dict:
        """Gaussian Glorot weights and zero biases drawn from the seed of `seed_parts`."""
        model = LotteryNet(self.hp.arch, self.hp.dataset)
        model.initialize(torch.Generator().manual_seed(derive_seed(self.hp.seed, *seed_parts)))
        return model.parameters_state()

    def original_init(self, trial: int) -> dict:
        """The trial's original initialization, the one winning tickets are reset to."""
        return self.init(trial, "init")

    def weights(self, parameters: dict) -> dict:
        """The prunable weights, by layer name, of a parameters state."""
        return {n: parameters[LotteryNet.weight_key(n)] for n in self.shapes}

    def dense_mask(self) -> dict:
        return {n: torch.ones(shape, dtype=torch.bool) for n, shape in self.shapes.items()}


# Each function gets (network, unit, checkpoints of unit's `starts_from`, in that order).
MaskFn = Callable[[Network, Unit, list], dict]
InitFn = Callable[[Network, Unit, list], dict]


def _pruned_previous(net: Network, unit: Unit, starts: list) -> dict:
    """One more round of magnitude pruning of the previous round's trained weights."""
    previous = starts[0]
    return prune_layerwise(net.weights(previous["trained"]), previous["mask"], net.rates)


def _original(net: Network, unit: Unit, starts: list) -> dict:
    return net.original_init(unit.trial)


def _fresh(net: Network, unit: Unit, starts: list) -> dict:
    return net.init(unit.trial, unit.strategy, unit.round)


def _random_mask(net: Network, unit: Unit, starts: list) -> dict:
    seed = derive_seed(net.hp.seed, unit.trial, unit.strategy, unit.round, "mask")
    return random_masks(net.shapes, net.counts(unit.round), torch.Generator().manual_seed(seed))


def _oneshot_mask(net: Network, unit: Unit, starts: list) -> dict:
    return prune_to_counts(net.weights(starts[0]["trained"]), net.counts(unit.round))


def _rewound(net: Network, unit: Unit, starts: list) -> dict:
    dense = starts[-1]
    return dense["rewind"] if net.hp.rewind_iteration else dense["initial"]


def _previous_ticket(unit: Unit) -> list:
    return [Unit("winning_ticket", unit.trial, unit.round - 1)]


def _dense(unit: Unit) -> list:
    return [Unit("winning_ticket", unit.trial, 0)]


def _own_chain_and_dense(unit: Unit) -> list:
    return [Unit("rewind", unit.trial, unit.round - 1)] * (unit.round > 1) + _dense(unit)


@dataclass(frozen=True)
class Strategy:
    name: str
    label: str                 # the paper's legend name (Figures 1, 3-5)
    short: str                 # for tables
    style: dict                # matplotlib line style: tickets solid, controls dashed
    starts_from: Callable[[Unit], list]   # the finished units a round r > 0 starts from
    mask: MaskFn
    init: InitFn
    start_iteration: Callable = field(default=lambda hp: 0)  # first iteration trained
    # Where its masks come from: "own" (its trained weights; kept in masks/, store.py), "seed"
    # (its seed alone), or the strategy whose mask of the same trial and round it takes.
    mask_from: str = "own"

    @property
    def own_mask(self) -> bool:
        return self.mask_from == "own"


TABLE = (  # legend order
    Strategy("winning_ticket", "Winning Ticket (Iterative)", "winning ticket",
             dict(color="#1f77b4", linestyle="-", marker="o"),
             _previous_ticket, _pruned_previous, _original),
    Strategy("oneshot", "Winning Ticket (Oneshot)", "one-shot",
             dict(color="#2ca02c", linestyle="-", marker="s"),
             _dense, _oneshot_mask, _original),
    Strategy("random_reinit", "Random Reinit (Iterative)", "reinit",
             dict(color="#d62728", linestyle="--", marker="v"),
             _previous_ticket, _pruned_previous, _fresh, mask_from="winning_ticket"),
    Strategy("random_sparse", "Random Sparse", "random sparse",
             dict(color="#ff7f0e", linestyle="--", marker="^"),
             lambda unit: [], _random_mask, _fresh, mask_from="seed"),
    Strategy("rewind", "Late Resetting", "late reset",
             dict(color="#9467bd", linestyle="-.", marker="D"),
             _own_chain_and_dense, _pruned_previous, _rewound,
             start_iteration=lambda hp: hp.rewind_iteration),
)
STRATEGIES = {s.name: s for s in TABLE}
# The order units are planned and rows written in: the winning ticket first (every control is
# defined by its masks and dense run), then the others in the order they were added. The names
# live in config.py (which imports no torch, for --help and the presets' validation).
RUN_ORDER = STRATEGY_NAMES
assert set(RUN_ORDER) == set(STRATEGIES), "config.STRATEGIES and strategies.TABLE differ"
assert all(s.mask_from in ("own", "seed", *STRATEGIES) for s in TABLE), "unknown mask_from"


def starts_from(unit: Unit) -> list:
    """The finished units `unit` starts from: none in round 0."""
    return STRATEGIES[unit.strategy].starts_from(unit) if unit.round else []


def starting_point(net: Network, unit: Unit, starts: list) -> tuple:
    """(mask, initial parameters with pruned weights zeroed, first iteration) of `unit`, from
    the checkpoints of `starts_from(unit)`; round 0 is the dense network at its original
    initialization."""
    if unit.round == 0:
        mask, init, first = net.dense_mask(), net.original_init(unit.trial), 0
    else:
        strategy = STRATEGIES[unit.strategy]
        mask, init = strategy.mask(net, unit, starts), strategy.init(net, unit, starts)
        first = strategy.start_iteration(net.hp)
    return mask, masked(init, mask), first


def masked(parameters: dict, mask: dict) -> dict:
    """`parameters` with the weights pruned by `mask` set to zero."""
    out = dict(parameters)
    for name, m in mask.items():
        key = LotteryNet.weight_key(name)
        out[key] = parameters[key] * m
    return out
