"""What a winning ticket looks like, from a results folder's committed files alone (its masks
and the seeds: `committed.py`), as in the paper's Appendix F, "Examining winning tickets", on
LeNet-300-100.

- `input_survivors`: surviving connections of the first layer per input pixel, an [H, W]
  map (Appendix F.6, Figure 23: the input layer's outgoing connections; MNIST's border
  pixels carry no information).
- `init_histograms`, `init_stats`: the initial values of a winning ticket's surviving weights
  against the whole initialization, per layer (Appendix F.1, Figure 15).
- `layer_pm`: each layer's Pm through the rounds, the output layer pruned at half the rate
  (Appendix F.6; Figure 2's rates), from `Network.counts`, checked against the masks here.

Nothing here trains or prunes. How far weights move needs the trained weights: `movement.py`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .committed import Run, initialization, mask
from .errors import LTHError
from .paper import dataset_shape


# --- which inputs survive (Appendix F.6, Figure 23) -------------------------------------------

def input_survivors(run: Run, layer_mask: dict) -> np.ndarray:
    """Surviving connections from each input pixel to the first layer: an [H, W] array of
    counts (0 to the layer's width; summed over channels). Fully-connected first layers only."""
    first = next(iter(run.net.shapes))
    shape = run.net.shapes[first]
    if len(shape) != 2:
        raise LTHError(f"{run.hp.arch}'s first layer is a convolution: its connections are "
                       f"not per pixel")
    channels, height, width, _ = dataset_shape(run.hp.dataset)
    counts = layer_mask[first].sum(dim=0).reshape(channels, height, width).sum(dim=0)
    return counts.numpy()


def border_table(maps: dict) -> pd.DataFrame:
    """Mean surviving connections per pixel by distance from the image's edge (0: the
    outermost ring), one column per entry of `maps` ({label: [H, W] counts})."""
    out = {}
    for label, counts in maps.items():
        h, w = counts.shape
        rows, cols = np.indices((h, w))
        ring = np.minimum.reduce([rows, cols, h - 1 - rows, w - 1 - cols])
        out[label] = pd.Series({int(r): counts[ring == r].mean() for r in np.unique(ring)})
    table = pd.DataFrame(out)
    table.index.name = "pixels from the edge"
    return table


# --- which initial values survive (Appendix F.1, Figure 15) ------------------------------------

def surviving_init(run: Run, units: list) -> dict:
    """{layer: (all initial weights, surviving ones)} pooled over `units` (numpy arrays),
    as the paper pools five trials; units without a mask are left out."""
    pooled = {name: ([], []) for name in run.net.shapes}
    for unit in units:
        m = mask(run, unit)
        if m is None:
            continue
        weights = run.net.weights(initialization(run, unit))
        for name, w in weights.items():
            pooled[name][0].append(w.reshape(-1).numpy())
            pooled[name][1].append(w[m[name]].numpy())
    return {name: (np.concatenate(a), np.concatenate(s)) for name, (a, s) in pooled.items()
            if a}


def init_histograms(pooled: dict, bins: int = 60) -> pd.DataFrame:
    """Tidy densities (area 1, as Figure 15) of each layer's initial weights: `all` (the whole
    initialization) and `survivors` (the winning ticket's), on shared bins spanning both."""
    rows = []
    for name, (every, kept) in pooled.items():
        edges = np.histogram_bin_edges(every, bins=bins)
        for which, values in (("all", every), ("survivors", kept)):
            density, _ = np.histogram(values, bins=edges, density=len(values) > 0)
            rows += [dict(layer=name, which=which, left=lo, right=hi, density=d)
                     for lo, hi, d in zip(edges[:-1], edges[1:], density)]
    return pd.DataFrame(rows)


def init_stats(pooled: dict) -> pd.DataFrame:
    """Per layer: how many initial weights, how many survive, the standard deviation and the
    mean |value| of each, and the fraction of survivors that are positive (Figure 15's
    asymmetry)."""
    rows = []
    for name, (every, kept) in pooled.items():
        rows.append({"layer": name, "weights": every.size, "survivors": kept.size,
                     "std (all)": every.std(), "std (survivors)": kept.std() if kept.size else
                     np.nan, "mean |w| (all)": np.abs(every).mean(),
                     "mean |w| (survivors)": np.abs(kept).mean() if kept.size else np.nan,
                     "positive (survivors, %)": 100 * (kept > 0).mean() if kept.size else
                     np.nan})
    return pd.DataFrame(rows).set_index("layer")


# --- where the weights go (Appendix F.6; Figure 2's rates) -------------------------------------

def layer_pm(run: Run, rounds=None) -> pd.DataFrame:
    """Tidy: one row per (round, layer) with the layer's rate, size, weights remaining and Pm
    (%) from `Network.counts`, the network's Pm, and `masks`: how many committed masks of that
    round were counted (any trial, winning tickets) and `masks_agree`, whether all of them hold
    exactly `remaining` weights (None where no mask is kept)."""
    rounds = range(run.hp.rounds + 1) if rounds is None else rounds
    units = run.finished("winning_ticket")
    rows = []
    for r in rounds:
        counts = run.net.counts(r)
        found = [m for m in (mask(run, u) for u in units if u.round == r and r > 0) if m]
        for name, size in run.net.sizes.items():
            agree = all(int(m[name].sum()) == counts[name] for m in found) if found else None
            rows.append({"run": run.name, "round": r, "layer": name,
                         "rate": run.net.rates[name], "size": size, "remaining": counts[name],
                         "layer_pm": 100.0 * counts[name] / size, "pm": run.pm(r),
                         "masks": len(found), "masks_agree": agree})
    return pd.DataFrame(rows)
