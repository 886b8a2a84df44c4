"""Layer-wise magnitude pruning and the masks of the controls (paper Sections 1-2, Figure 2).

Each round removes a fixed fraction of each layer's *remaining* weights, those of smallest
magnitude. The number removed from a layer with n remaining weights is round(rate * n), so
the per-layer counts after r rounds depend only on the rates: `layer_counts` computes them,
and every strategy (iterative, one-shot, random sparse) prunes to the same counts.
"""
import torch

from .paper import FIGURE_2


def layer_rates(arch: str, kinds: dict, rates: dict | None = None) -> dict:
    """Per-layer pruning rate from the layer kinds ('conv'/'fc'/'output'), Figure 2 by default."""
    spec = FIGURE_2[arch]
    rates = rates or {"conv": spec.prune_rate_conv, "fc": spec.prune_rate_fc,
                      "output": spec.prune_rate_output}
    return {name: rates[kind] for name, kind in kinds.items()}


def layer_counts(sizes: dict, rates: dict, rounds: int) -> dict:
    """Weights remaining in each layer after `rounds` rounds of iterative pruning."""
    counts = dict(sizes)
    for _ in range(rounds):
        counts = {n: c - round(rates[n] * c) for n, c in counts.items()}
    return counts


def percent_remaining(counts: dict, sizes: dict) -> float:
    """Pm: the percentage of prunable weights that remain."""
    return 100.0 * sum(counts.values()) / sum(sizes.values())


def _keep_largest(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean mask keeping the `keep` largest scores (ties broken by position, stably)."""
    order = torch.argsort(scores.flatten(), descending=True, stable=True)
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[order[:keep]] = True
    return mask.view_as(scores)


def prune_layerwise(weights: dict, masks: dict, rates: dict) -> dict:
    """One round of magnitude pruning: drop round(rate * remaining) smallest surviving weights
    of each layer. Pruned weights never come back."""
    new = {}
    for name, w in weights.items():
        remaining = int(masks[name].sum())
        scores = torch.where(masks[name], w.abs(), torch.tensor(-1.0, device=w.device))
        new[name] = _keep_largest(scores, remaining - round(rates[name] * remaining))
    return new


def prune_to_counts(weights: dict, counts: dict) -> dict:
    """One-shot magnitude pruning: keep the `counts[name]` largest-magnitude weights per layer."""
    return {name: _keep_largest(w.abs(), counts[name]) for name, w in weights.items()}


def random_masks(shapes: dict, counts: dict, generator: torch.Generator) -> dict:
    """Random sparse masks with `counts[name]` surviving weights per layer (the Fig. 4 control)."""
    return {name: _keep_largest(torch.rand(shape, generator=generator), counts[name])
            for name, shape in shapes.items()}


def mask_counts(masks: dict) -> dict:
    return {n: int(m.sum()) for n, m in masks.items()}
