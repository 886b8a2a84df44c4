"""Figures in the paper's style, from `run_data.Results`: Figures 1, 4 and 5 against Pm
(`pm_figure`, `arch_figure`, `grid_figure`) and Figure 3's learning curves (`curves_figure`).

As in Frankle & Carbin: every line is the mean over trials with error bars at the minimum and
maximum trial. The look (line styles, colours, the Pm axis), the words (axis labels, titles,
legends) and saving are `figure_style.py`'s.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .analysis import aggregate, curves, match_pm_levels, pm_label, round_pms
from .figure_style import (ARCH_COLORS, LEVEL_COLORS, STRATEGY_STYLE, ZORDER, accuracy_axis,
                           count_phrase, drawn, figure_legend, figure_title, iterations_label,
                           legend_below, paper_style, pm_axis, suptitle, value_labels)
from .run_data import ARCH_NAMES, SHORT_NAMES, STRATEGY_LABELS, Results


def _errorbar(ax, x, agg, label=None, errorevery=1, **style):
    """Mean with error bars from the min to the max trial (the paper's convention)."""
    mean = agg["mean"].to_numpy(float)
    yerr = np.vstack([mean - agg["min"].to_numpy(float), agg["max"].to_numpy(float) - mean])
    return ax.errorbar(np.asarray(x, float), mean, yerr=yerr, label=label,
                       errorevery=errorevery, elinewidth=0.9, **style)


# --- Pm figures (Figures 1, 4 and 5) -------------------------------------------------------

def pm_figure(results: Results, values, strategies=None, title: str | None = None,
              panel_width: float = 5.2, height: float = 4.0):
    """One panel per summary value against Pm, one line per strategy (mean over trials,
    error bars at min and max). `strategies` defaults to every strategy in the results; one
    without networks of its own is not drawn. The title defaults to `figure_title`."""
    strategies = [s for s in (strategies or results.strategies) if s in results.strategies]
    labels = value_labels(results.hp.iterations)
    with paper_style():
        fig, axes = plt.subplots(1, len(values), figsize=(panel_width * len(values), height),
                                 squeeze=False)
        for ax, value in zip(axes[0], values):
            for s in strategies:
                agg = aggregate(results.summary[results.summary["strategy"] == s], value)
                label = STRATEGY_LABELS[s]
                if s == "rewind":
                    label += f" (k = {results.hp.rewind_iteration})"
                _errorbar(ax, agg["pm"], agg, label=label, zorder=ZORDER.get(s, 3),
                          **STRATEGY_STYLE[s])
            pm_axis(ax, results.summary["pm"])
            ax.set_ylabel(labels[value])
            if "accuracy" in value:
                accuracy_axis(ax)
        suptitle(fig, title or figure_title([results]))
        fig.tight_layout()
        figure_legend(fig, axes[0])
    return fig


def arch_figure(results_list, values, strategies=("winning_ticket", "random_reinit"),
                title: str | None = None, panel_width: float = 5.2, height: float = 4.0,
                series=None):
    """Figure 5: several architectures, one color each; winning tickets solid, random
    reinitialization dashed (each drawn only where it has networks). One panel per summary
    value; the title defaults to `figure_title` with the line styles drawn. `series`, one
    (name, color) per results, names and colours the lines instead of the architecture
    (e.g. one network under two presets)."""
    results_list = list(results_list)
    series = series or [(ARCH_NAMES[r.hp.arch], ARCH_COLORS[r.hp.arch]) for r in results_list]
    with paper_style():
        fig, axes = plt.subplots(1, len(values), figsize=(panel_width * len(values), height),
                                 squeeze=False)
        for ax, value in zip(axes[0], values):
            pms = []
            for r, (name, color) in zip(results_list, series):
                for s in drawn(r, strategies):
                    agg = aggregate(r.summary[r.summary["strategy"] == s], value)
                    pms.extend(agg["pm"])
                    style = dict(STRATEGY_STYLE[s], color=color)
                    label = name if s == "winning_ticket" else f"{name} ({SHORT_NAMES[s]})"
                    _errorbar(ax, agg["pm"], agg, label=label, zorder=ZORDER.get(s, 3),
                              **style)
            pm_axis(ax, pms)
            iterations = {r.hp.iterations for r in results_list}
            label = value_labels(min(iterations))[value]
            if len(iterations) > 1:  # the paper's Conv-2/4/6 train 20K/25K/30K iterations
                label = label.replace(f"Iteration {iterations_label(min(iterations))}",
                                      "Last Iteration")
            ax.set_ylabel(label)
            if "accuracy" in value:
                accuracy_axis(ax)
        suptitle(fig, title or figure_title(results_list, strategies, colors=False))
        fig.tight_layout()
        figure_legend(fig, axes[0])
    return fig


def grid_figure(results_list, values, strategies=("winning_ticket", "random_reinit"),
                title: str | None = None, panel_width: float = 3.3, height: float = 2.9):
    """One column per experiment, one row per summary value: each network on its own axes
    (their iterations and Pm ranges differ); winning tickets solid, controls dashed, each
    drawn only where it has networks. The title defaults to `figure_title`."""
    results_list = list(results_list)
    with paper_style():
        fig, axes = plt.subplots(len(values), len(results_list), squeeze=False,
                                 figsize=(panel_width * len(results_list), height * len(values)))
        for col, r in enumerate(results_list):
            labels = value_labels(r.hp.iterations)
            for row, value in enumerate(values):
                ax = axes[row][col]
                for s in drawn(r, strategies):
                    agg = aggregate(r.summary[r.summary["strategy"] == s], value)
                    _errorbar(ax, agg["pm"], agg, label=STRATEGY_LABELS[s],
                              zorder=ZORDER.get(s, 3), **STRATEGY_STYLE[s])
                pm_axis(ax, r.summary["pm"], most_ticks=3)  # narrow panels: fewer labels
                if row == 0:
                    ax.set_title(f"{ARCH_NAMES[r.hp.arch]} ({iterations_label(r.hp.iterations)} "
                                 f"it., {count_phrase(r.trials, 'trial')})")
                if row < len(values) - 1:
                    ax.set_xlabel("")
                if col == 0:
                    ax.set_ylabel(labels[value].replace(f" {iterations_label(r.hp.iterations)}",
                                                        " End"))
                if "accuracy" in value:
                    accuracy_axis(ax)
        suptitle(fig, title or figure_title(results_list, strategies, trials=False))
        fig.tight_layout()
        figure_legend(fig, [ax for row in axes for ax in row], ncol=5)
    return fig


# --- learning curves (Figure 3) -------------------------------------------------------------

def curve_panel(ax, results: Results, levels, strategy: str = "winning_ticket",
                dashed: bool = False, suffix: str = "", bars: int = 12):
    """Test accuracy vs training iteration at each Pm level found in the results (nearest
    round within tolerance). Returns the levels that are missing."""
    rows = results.metrics[results.metrics["strategy"] == strategy]
    found, missing = match_pm_levels(round_pms(rows), levels)
    data = curves(rows)
    for level, rnd in found.items():
        agg = data[data["round"] == rnd]
        every = max(1, len(agg) // bars)
        style = dict(color=LEVEL_COLORS.get(level), linestyle="--" if dashed else "-")
        _errorbar(ax, agg["iteration"], agg, label=pm_label(level) + suffix,
                  errorevery=every, **style)
    return found, missing


def _zoom_accuracy(ax, frames) -> None:
    """Zoom the y axis on the curves after their first rise, as the paper's Figure 3 does
    (its axis starts at 0.94): the lowest mean past 10% of training, to the highest max."""
    lows, highs = [], []
    for agg in frames:
        if agg.empty:
            continue
        late = agg[agg["iteration"] >= 0.1 * agg["iteration"].max()]
        lows.append(late["mean"].min())
        highs.append(agg["max"].max())
    if lows:
        lo, hi = min(lows), max(highs)
        pad = max(0.005, 0.08 * (hi - lo))
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))


def curves_figure(results: Results, panels, title: str | None = None,
                  panel_width: float = 5.2, height: float = 4.0):
    """Figure 3: one panel per entry of `panels`, each a dict with `levels`, and optionally
    `strategy` (default winning_ticket), `dashed`, `suffix`, `title`, and `compare`
    (another dict like it drawn on the same axes, e.g. random reinitialization). Each
    panel's legend is under it; the title defaults to `figure_title`.
    Returns (figure, {panel index: missing levels})."""
    missing = {}
    with paper_style():
        fig, axes = plt.subplots(1, len(panels), figsize=(panel_width * len(panels), height),
                                 squeeze=False)
        for i, (ax, panel) in enumerate(zip(axes[0], panels)):
            frames, gone = [], set()
            for spec in [panel, *([panel["compare"]] if panel.get("compare") else [])]:
                strategy = spec.get("strategy", "winning_ticket")
                found, miss = curve_panel(ax, results, spec["levels"], strategy,
                                          spec.get("dashed", False), spec.get("suffix", ""))
                gone.update(miss)
                rows = results.metrics[results.metrics["strategy"] == strategy]
                data = curves(rows)
                frames += [data[data["round"] == r] for r in found.values()]
            missing[i] = sorted(gone, reverse=True)
            _zoom_accuracy(ax, frames)
            ax.set_xlabel("Training Iterations")
            ax.set_ylabel("Test Accuracy")
            accuracy_axis(ax)
            if panel.get("title"):
                ax.set_title(panel["title"])
        suptitle(fig, title or figure_title([results]))
        fig.tight_layout()
        for ax in axes[0]:
            legend_below(ax, title="Pm (%)")
    return fig, missing
