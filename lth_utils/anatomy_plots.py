"""The figures of what a winning ticket looks like (paper Appendix F), from the tables of
`anatomy.py` and `movement.py`, in the style of `figure_style.py`. Each function takes tables,
returns a matplotlib figure and computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .figure_style import STRATEGY_STYLE, paper_style, pm_axis
from .run_data import STRATEGY_LABELS

LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                "#7f7f7f", "#bcbd22", "#17becf")  # the paper's Figure 15 order: blue, orange, green


def survivors_figure(maps: dict, width: int, title: str):
    """One 28 x 28 (H x W) heat map per entry of `maps` ({Pm label: counts of surviving
    connections per input pixel}), on one color scale from 0 to `width` (the first layer's
    units: every connection kept)."""
    with paper_style():
        fig, axes = plt.subplots(1, len(maps), figsize=(2.3 * len(maps) + 0.8, 2.9),
                                 squeeze=False)
        image = None
        for ax, (label, counts) in zip(axes[0], maps.items()):
            image = ax.imshow(counts, cmap="viridis", vmin=0, vmax=width)
            ax.set_title(f"Pm = {label}%")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        fig.colorbar(image, ax=list(axes[0]), shrink=0.85,
                     label=f"connections kept (of {width})")
        fig.suptitle(title, y=1.02)
    return fig


def init_figure(histograms: dict, labels: dict, title: str):
    """One panel per entry of `histograms` ({Pm label: `anatomy.init_histograms` table}): per
    layer, the density of the winning ticket's surviving initial weights (solid) and of the
    whole initialization (dotted), as the paper's Figure 15 (area 1 under each curve); three
    panels a row."""
    cols = min(3, len(histograms))
    rows_ = -(-len(histograms) // cols)
    with paper_style():
        fig, grid = plt.subplots(rows_, cols, figsize=(4.0 * cols, 3.1 * rows_), squeeze=False)
        axes = [list(grid.ravel())]
        for ax in axes[0][len(histograms):]:
            ax.set_visible(False)
        for ax, (pm, table) in zip(axes[0], histograms.items()):
            for color, (layer, rows) in zip(LAYER_COLORS, table.groupby("layer", sort=False)):
                for which, style in (("survivors", "-"), ("all", ":")):
                    r = rows[rows["which"] == which]
                    centers = (r["left"] + r["right"]) / 2
                    ax.plot(centers, r["density"], style, color=color, lw=1.3,
                            label=f"{labels[layer]}" if which == "survivors" else None)
            ax.set_title(f"Pm = {pm}%")
            ax.set_xlabel("Initial weight")
        for row in grid:
            row[0].set_ylabel("Density")
        fig.suptitle(f"{title}\nsolid: surviving weights; dotted: the whole initialization")
        fig.tight_layout()
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper center", ncol=len(names),
                   bbox_to_anchor=(0.5, 0.0))
    return fig


def movement_figure(table: pd.DataFrame, labels: dict, value: str, ylabel: str, title: str):
    """One panel per layer: `value` of `movement.csv` against Pm, one line per strategy (mean
    over trials, error bars at the minimum and maximum trial)."""
    layers = list(dict.fromkeys(table["layer"]))
    with paper_style():
        fig, axes = plt.subplots(1, len(layers), figsize=(4.2 * len(layers), 3.4),
                                 squeeze=False)
        for ax, layer in zip(axes[0], layers):
            rows = table[table["layer"] == layer]
            for strategy in [s for s in STRATEGY_LABELS if s in set(rows["strategy"])]:
                agg = rows[rows["strategy"] == strategy].groupby("round").agg(
                    pm=("pm", "mean"), mean=(value, "mean"), lo=(value, "min"),
                    hi=(value, "max")).sort_values("pm", ascending=False)
                err = np.vstack([agg["mean"] - agg["lo"], agg["hi"] - agg["mean"]])
                ax.errorbar(agg["pm"], agg["mean"], yerr=err, label=STRATEGY_LABELS[strategy],
                            elinewidth=0.9, **STRATEGY_STYLE[strategy])
            pm_axis(ax, rows["pm"])
            ax.set_title(labels.get(layer, layer))
        axes[0][0].set_ylabel(ylabel)
        fig.suptitle(title)
        fig.tight_layout()
        handles, names = axes[0][0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="upper center", ncol=len(names),
                       bbox_to_anchor=(0.5, 0.0))
    return fig


def layer_pm_figure(tables: dict, labels: dict, title: str):
    """One panel per run ({run: `anatomy.layer_pm` table}): each layer's Pm (log scale)
    against the pruning round, the network's Pm dashed; markers where committed masks agree."""
    with paper_style():
        fig, axes = plt.subplots(1, len(tables), figsize=(4.6 * len(tables), 3.6),
                                 squeeze=False)
        for ax, (run, table) in zip(axes[0], tables.items()):
            layers = table.groupby("layer", sort=False)
            for i, (color, (layer, rows)) in enumerate(zip(LAYER_COLORS, layers)):
                # widest first, so that layers pruned at the same rate all stay visible
                ax.plot(rows["round"], rows["layer_pm"], "-", color=color,
                        lw=1.2 + 0.9 * (len(layers) - 1 - i), label=labels[run][layer])
                checked = rows[rows["masks_agree"].eq(True)]
                ax.plot(checked["round"], checked["layer_pm"], "o", color=color, ms=5,
                        mfc="none")
            network = table.drop_duplicates("round")
            ax.plot(network["round"], network["pm"], "--", color="black", label="network")
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("Pruning round")
            ax.set_title(run)
            ax.legend(fontsize=7.5, loc="lower left")
        axes[0][0].set_ylabel("Weights remaining (%)")
        fig.suptitle(title)
        fig.tight_layout()
    return fig
