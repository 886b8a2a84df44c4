"""The look and the words of the paper's figures, and saving them (for `plotting.py` and
`anatomy_plots.py`).

As in Frankle & Carbin: the x axis of the Pm plots is "Percent of Weights Remaining" on a log
scale, reversed, from 100 down; solid lines are winning tickets, dashed lines controls (random
reinitialization, random sparse networks). Titles say what a figure shows from the results
themselves (`figure_title`). `save_figure` writes PNG and SVG under stable names and shows the
figure in the notebook, tagged so that build.py can put it in the report.
"""
from __future__ import annotations

import base64
import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.rcParams["svg.hashsalt"] = "lottery-ticket"  # stable ids: same figure, same SVG
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from .analysis import pm_label  # noqa: E402
from .run_data import (ARCH_NAMES, DATASET_NAMES, SHORT_NAMES, STRATEGY_LABELS,  # noqa: E402
                       Results)
from .strategies import TABLE  # noqa: E402

# One look per strategy, from the strategies' table: tickets solid, controls dashed.
STRATEGY_STYLE = {s.name: s.style for s in TABLE}
ZORDER = {"winning_ticket": 6, "oneshot": 5}  # tickets drawn over the controls they may hide
ARCH_COLORS = {"lenet": "#7f7f7f", "conv2": "#1f77b4", "conv4": "#ff7f0e", "conv6": "#2ca02c"}
LEVEL_COLORS = {100.0: "#1f77b4", 51.3: "#ff7f0e", 21.1: "#2ca02c", 7.0: "#d62728",
                3.6: "#9467bd", 1.9: "#8c564b"}

STYLE = {
    "figure.dpi": 100, "savefig.dpi": 150, "font.size": 10.5, "axes.titlesize": 11.5,
    "axes.labelsize": 10.5, "legend.fontsize": 9, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "axes.grid": True, "grid.alpha": 0.35, "grid.linestyle": ":", "axes.spines.top": False,
    "axes.spines.right": False, "lines.linewidth": 1.6, "lines.markersize": 4.5,
    "errorbar.capsize": 3, "legend.frameon": False, "svg.fonttype": "none",
}

PM_AXIS_LABEL = "Percent of Weights Remaining"


def paper_style():
    """A context manager with this module's matplotlib style (`with paper_style(): ...`)."""
    return plt.rc_context(STYLE)


def iterations_label(iterations: int) -> str:
    """50000 -> '50K', 5000 -> '5K', 300 -> '300' (the paper writes 'Iteration 50K')."""
    return f"{iterations / 1000:g}K" if iterations >= 1000 else f"{iterations}"


# --- axes ---------------------------------------------------------------------------------

def _thin(values: list, most: int) -> list:
    """Ticks among the Pm `values` (sorted, largest first): at most `most`, no two closer
    than 1/(most + 2) of the axis span in log space (labels must not overlap); the largest
    and the smallest are always kept."""
    if len(values) <= 1:
        return values
    span = math.log(values[0] / values[-1])
    gap = span / (most + 2)
    picked = [values[0]]
    for v in values[1:]:
        if math.log(picked[-1] / v) >= gap:
            picked.append(v)
    if picked[-1] != values[-1]:  # keep the smallest; drop its too-close neighbour
        if len(picked) > 1 and math.log(picked[-1] / values[-1]) < gap:
            picked.pop()
        picked.append(values[-1])
    while len(picked) > most:  # evenly thin the inner ticks
        picked.pop(len(picked) // 2)
    return picked


def pm_axis(ax, pms, most_ticks: int = 8) -> None:
    """Log-scaled, reversed Pm axis (100 on the left) with ticks at the Pm values present."""
    values = sorted({round(float(p), 1) for p in pms}, reverse=True)
    ax.set_xscale("log")
    ax.set_xlim(values[0] * 1.1, values[-1] / 1.1)
    ax.xaxis.set_major_locator(FixedLocator(_thin(values, most_ticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: pm_label(x)))
    ax.set_xlabel(PM_AXIS_LABEL)


def accuracy_axis(ax):
    """Accuracy as a fraction, as in the paper (0.94, 0.95, ...), never offset."""
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def value_labels(iterations: int) -> dict:
    """The paper's y-axis label of each summary value."""
    it = iterations_label(iterations)
    return {"early_stop_iteration": "Early-Stop Iteration (Val.)",
            "early_stop_val_loss": "Validation Loss at Early-Stop",
            "early_stop_test_accuracy": "Accuracy at Early-Stop (Test)",
            "final_test_accuracy": f"Accuracy at Iteration {it} (Test)",
            "final_train_accuracy": f"Accuracy at Iteration {it} (Train)"}


# --- legends and titles --------------------------------------------------------------------

def figure_legend(fig, axes, ncol: int = 3) -> None:
    """One legend for the figure, under the panels (the paper puts it inside; with up to
    five strategies and min/max bars, below the plots it hides no data), with every label
    drawn on any of `axes`. Call it after tight_layout: savefig(bbox_inches="tight") then
    takes it in."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:  # no more columns than fit the figure's width (about 2.2 inches each)
        fits = max(1, int(fig.get_size_inches()[0] / 2.2))
        fig.legend(entries.values(), entries.keys(), loc="upper center",
                   ncol=min(len(entries), ncol, fits), bbox_to_anchor=(0.5, 0.0))


def suptitle(fig, text: str) -> None:
    """The figure's title, wrapped to its width (about 11 characters an inch at this size)."""
    fig.suptitle(textwrap.fill(text, max(40, int(11 * fig.get_size_inches()[0])),
                               break_on_hyphens=False))


def legend_below(ax, **options) -> None:
    """The legend of one panel under it, below its tick labels and x label, so that it hides
    no data whatever the curves fill. Call it after tight_layout."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    bottom = ax.get_tightbbox(ax.figure.canvas.get_renderer()).y0
    y = ax.transAxes.inverted().transform((0, bottom))[1]
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y - 0.02),
              ncol=min(len(labels), 5), **options)


# --- what a figure shows, in its title ---------------------------------------------------------

def drawn(results: Results, strategies=None) -> list:
    """The strategies of `strategies` (default: all) that have networks in `results`."""
    return [s for s in results.strategies if strategies is None or s in strategies]


def count_phrase(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def strategy_phrase(results_list, strategies=None, colors: bool = True) -> str:
    """'winning ticket (blue solid) vs. reinit (red dashed)': the strategies of `strategies`
    (default: all) that have networks in any of `results_list`, with their line's look
    ('solid', 'dashed' only without `colors`: a figure coloured by network or run)."""
    shown = [s for s in STRATEGY_LABELS
             if any(s in drawn(r, strategies) for r in results_list)]
    return (" vs. " if len(shown) == 2 else ", ").join(
        f"{SHORT_NAMES[s]} ({_line_word(s, colors)})" for s in shown)


def trials_phrase(results_list) -> str:
    """'mean of 5 trials, error bars min-max', or '1 trial' (a line without error bars)."""
    counts = sorted({r.trials for r in results_list})
    return (count_phrase(counts[0], "trial") if counts == [1] else
            f"mean of {' or '.join(map(str, counts))} trials, error bars min-max")


def figure_title(results_list, strategies=None, subject: str = "", trials: bool = True,
                 colors: bool = True) -> str:
    """'<networks> on <dataset>[, subject]: <strategy_phrase>, <trials_phrase>; preset paper',
    from the results themselves (the strategies only when `strategies` is given, the trials
    unless `trials=False`; the lines' colours unless `colors=False`)."""
    results_list = list(results_list)
    by_dataset = {}
    for r in results_list:
        names = by_dataset.setdefault(DATASET_NAMES[r.hp.dataset], [])
        names += [ARCH_NAMES[r.hp.arch]] if ARCH_NAMES[r.hp.arch] not in names else []
    parts = [strategy_phrase(results_list, strategies, colors)] if strategies is not None \
        else []
    parts += [trials_phrase(results_list)] if trials else []
    presets = sorted({r.hp.preset for r in results_list})
    head = ", ".join(f"{' / '.join(names)} on {dataset}" for dataset, names in by_dataset.items())
    head += f", {subject}" if subject else ""
    return f"{head}{': ' + ', '.join(parts) if parts else ''}; preset {', '.join(presets)}"


# The names of the strategies' colours (matplotlib's tab10), for titles.
COLOR_NAMES = {"#1f77b4": "blue", "#ff7f0e": "orange", "#2ca02c": "green", "#d62728": "red",
               "#9467bd": "purple", "#8c564b": "brown", "#7f7f7f": "grey"}
SERIES_COLORS = tuple(COLOR_NAMES)  # one per run, in order, where a figure colours by run


def _line_word(strategy: str, color: bool = True) -> str:
    """'blue solid' (or 'solid'): how a strategy's line looks (two strategies may share a
    line style)."""
    style = STRATEGY_STYLE[strategy]
    line = {"-": "solid", "--": "dashed", "-.": "dash-dot"}[style["linestyle"]]
    return f"{COLOR_NAMES.get(style['color'], style['color'])} {line}" if color else line


# --- saving and showing ---------------------------------------------------------------------

def save_figure(fig, name: str, figures_dir="figures", caption: str = "", show: bool = True):
    """Write `fig` as `<figures_dir>/<name>.png` and `.svg`, show it in the notebook (tagged
    with its name and caption for the report) and close it. Returns nothing, so that a cell
    ending with it shows no Out[] line; the files are `figure_paths(name, figures_dir)`."""
    png, svg = figure_paths(name, figures_dir)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, bbox_inches="tight", facecolor="white")
    fig.savefig(svg, bbox_inches="tight", facecolor="white", metadata={"Date": None})
    width_px = int(round(fig.get_size_inches()[0] * 96))
    plt.close(fig)
    if show:
        _show(png, name, caption, width_px)


def figure_paths(name: str, figures_dir="figures") -> tuple:
    """(PNG path, SVG path) of the figure `name`."""
    folder = Path(figures_dir)
    return folder / f"{name}.png", folder / f"{name}.svg"


def _show(png: Path, name: str, caption: str, width_px: int) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:
        return
    data = {"image/png": base64.b64encode(png.read_bytes()).decode("ascii"),
            "text/plain": f"<figure {name}: {png}>"}
    metadata = {"image/png": {"width": width_px},
                "lth_figure": {"name": name, "png": png.name, "svg": f"{name}.svg",
                               "caption": caption}}
    display(data, raw=True, metadata=metadata)
