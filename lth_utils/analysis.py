"""Tables and numbers from results folders read into pandas (`run_data.Results`), for the
notebooks and the report: aggregates over trials, Figure 3's Pm levels, the numbers the
overview compares and the table of what was run.

Conventions:
- Aggregates are over trials: mean, min and max (the paper's error bars), and n, the number of
  trials behind each point.
- Figure 3's Pm levels are matched to rounds by the nearest Pm within a relative tolerance;
  levels with no round that close are reported missing, never interpolated.
- Tables for reading mark a value that does not exist with `MISSING` ("—"), and only that.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .run_data import (ARCH_NAMES, DATASET_NAMES, SHORT_NAMES, STRATEGY_LABELS, Results,
                       describe_run, spans)

# Figure 3: the Pm levels (percent of weights remaining) of LeNet's test-accuracy curves.
FIG3_PM_LEVELS = (100.0, 51.3, 21.1, 7.0, 3.6, 1.9)
# A round matches a level when its Pm is within this relative distance of it (LeNet's ladder
# gives the paper's levels to 0.1 points; 3% also absorbs the paper's rounding of small Pm).
PM_TOLERANCE = 0.03

SUMMARY_VALUES = ("early_stop_iteration", "early_stop_val_loss", "early_stop_test_accuracy",
                  "final_test_accuracy", "final_train_accuracy")
MISSING = "—"  # the one marker of a missing value in the tables for reading


# --- aggregation ----------------------------------------------------------------------------

def aggregate(df: pd.DataFrame, value: str, by=("strategy", "round")) -> pd.DataFrame:
    """Mean, min, max and count of `value` over trials, one row per `by` group, with the
    group's Pm (the same in every trial of a round). Sorted by Pm, largest first."""
    by = list(by)
    grouped = df.groupby(by, sort=False)
    out = grouped[value].agg(["mean", "min", "max", "count"]).rename(columns={"count": "n"})
    if "pm" not in by:
        out.insert(0, "pm", grouped["pm"].mean())
    out = out.reset_index()
    order = [c for c in ["strategy", "arch"] if c in out.columns]
    return out.sort_values([*order, "pm"], ascending=[True] * len(order) + [False],
                           kind="stable").reset_index(drop=True)


def by_pm(summary: pd.DataFrame, values=SUMMARY_VALUES) -> pd.DataFrame:
    """Wide table: one row per (strategy, round) with Pm and the mean of each value."""
    grouped = summary.groupby(["strategy", "round"], sort=False)
    table = grouped[list(values)].mean()
    table.insert(0, "pm", grouped["pm"].mean())
    table.insert(1, "trials", grouped["trial"].nunique())
    table = table.reset_index()
    table["order"] = table["strategy"].map({s: i for i, s in enumerate(STRATEGY_LABELS)})
    return table.sort_values(["order", "round"]).drop(columns="order").reset_index(drop=True)


def pm_table(results: Results) -> pd.DataFrame:
    """`by_pm` for reading: the paper's strategy names, Pm to 0.1, iterations as integers,
    accuracies in percent (means over trials); only the strategies that have networks."""
    t = by_pm(results.summary[results.summary["strategy"].isin(results.strategies)])
    return pd.DataFrame({
        "strategy": t["strategy"].map(STRATEGY_LABELS), "round": t["round"],
        "Pm (%)": t["pm"].round(1), "trials": t["trials"],
        "early-stop it.": t["early_stop_iteration"].round().astype(int),
        "val. loss there": t["early_stop_val_loss"].round(4),
        "test acc. there (%)": (100 * t["early_stop_test_accuracy"]).round(2),
        "final test acc. (%)": (100 * t["final_test_accuracy"]).round(2),
        "final train acc. (%)": (100 * t["final_train_accuracy"]).round(2),
    }).set_index(["strategy", "round"])


def round_table(results: Results) -> pd.DataFrame:
    """One row per pruning round: Pm, and for each strategy its early-stopping iteration (mean,
    with the range over trials) and the test accuracy there (mean). Round 0, the dense network
    every strategy starts from, is under the winning ticket only."""
    s = results.summary
    rows = pd.DataFrame({"Pm (%)": pd.Series(round_pms(s)).round(1)})
    rows.index.name = "round"
    for strategy in results.strategies:
        runs = s[(s["strategy"] == strategy) & ((s["round"] > 0) | (strategy == "winning_ticket"))]
        rows[SHORT_NAMES[strategy]] = runs.groupby("round").apply(lambda r: (
            f"{r.early_stop_iteration.mean():,.0f} ({r.early_stop_iteration.min():,}-"
            f"{r.early_stop_iteration.max():,}), {100 * r.early_stop_test_accuracy.mean():.2f}%"),
            include_groups=False)
    return rows.fillna("")


def markdown_table(table: pd.DataFrame, index: bool = False) -> str:
    """`table` as a Markdown table (for the README)."""
    if index:
        table = table.reset_index()
    cells = lambda row: "| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"  # noqa: E731
    lines = [cells(table.columns), cells(["---"] * len(table.columns))]
    return "\n".join(lines + [cells(row) for row in table.itertuples(index=False)])


def curves(metrics: pd.DataFrame, split: str = "test", value: str = "accuracy",
           by=("strategy", "round", "iteration")) -> pd.DataFrame:
    """Learning curves (Figure 3): `value` on `split` per iteration, mean/min/max over trials."""
    rows = metrics[metrics["split"] == split]
    return aggregate(rows, value, by).sort_values(list(by)).reset_index(drop=True)


# --- Pm levels ------------------------------------------------------------------------------

def round_pms(df: pd.DataFrame) -> dict:
    """{round: Pm} of a summary or metrics table."""
    return {int(r): float(p) for r, p in df.groupby("round")["pm"].mean().items()}


def match_pm_levels(pms: dict, levels=FIG3_PM_LEVELS, tolerance: float = PM_TOLERANCE):
    """Match each Pm level to the round whose Pm is nearest (in ratio), if within `tolerance`.

    `pms` is {round: Pm}. Returns (found, missing): found is {level: round} in the order of
    `levels`, missing the levels no round comes close to (never interpolated)."""
    found, missing = {}, []
    for level in levels:
        if not pms:
            missing.append(level)
            continue
        rnd = min(pms, key=lambda r: abs(math.log(pms[r] / level)))
        if abs(pms[rnd] / level - 1) <= tolerance:
            found[level] = rnd
        else:
            missing.append(level)
    return found, missing


def pm_label(pm: float) -> str:
    """The paper's way of writing a Pm: one decimal (100.0, 51.3, 21.1, ...)."""
    return f"{pm:.1f}"


def missing_note(missing, available: dict, what: str = "Figure 3") -> str:
    """A sentence naming the Pm levels a figure could not draw and the ones the results have."""
    if not missing:
        return f"All of {what}'s Pm levels are in these results."
    have = ", ".join(pm_label(p) for p in sorted(available.values(), reverse=True))
    return (f"Not in these results (no pruning round close enough): Pm = "
            f"{', '.join(pm_label(m) for m in missing)}%. This run has Pm = {have}%; a preset "
            f"with more rounds (quick, paper) reaches them.")


# --- the numbers the overview compares ----------------------------------------------------

def key_numbers(results: Results, versus: str = "random_reinit") -> pd.DataFrame:
    """Per round: Pm, and winning ticket vs `versus` early-stopping iteration and test accuracy
    there (means over trials), with the dense network's early-stop iteration divided by the
    ticket's (above 1: the ticket stops learning sooner than the dense network). The `versus` columns are there only if
    it has networks; a round it lacks reads `MISSING`."""
    table = by_pm(results.summary, ["early_stop_iteration", "early_stop_test_accuracy"])
    ticket = table[table["strategy"] == "winning_ticket"].set_index("round")
    other = table[table["strategy"] == versus].set_index("round")
    compared = versus in results.strategies
    short = SHORT_NAMES.get(versus, versus)
    rows = pd.DataFrame({"Pm (%)": ticket["pm"].round(1)})
    rows["ticket: early-stop it."] = ticket["early_stop_iteration"].round().astype("Int64")
    if compared:
        rows[f"{short}: early-stop it."] = other["early_stop_iteration"].round().astype("Int64")
    rows["ticket: test acc. (%)"] = (100 * ticket["early_stop_test_accuracy"]).round(2)
    if compared:
        rows[f"{short}: test acc. (%)"] = (100 * other["early_stop_test_accuracy"]).round(2)
    if 0 in ticket.index:
        rows["speed-up vs. dense"] = (ticket.loc[0, "early_stop_iteration"]
                                      / ticket["early_stop_iteration"]).round(2)
    rows.index.name = "round"
    return rows.astype(object).where(rows.notna(), MISSING)


def ticket_verdict(results: Results, versus: str = "random_reinit") -> str:
    """One sentence, from the numbers, on whether winning tickets beat `versus` at the
    smallest Pm that both have reached in these results (the paper's claim: they learn
    faster, and reach higher test accuracy, as Pm falls, while random reinitializations slow
    down)."""
    table = by_pm(results.summary, ["early_stop_iteration", "early_stop_test_accuracy"])
    if int(table["round"].max()) == 0:
        return f"{results.title}: only the dense network was trained; nothing to compare."
    rounds = {s: set(table.loc[table["strategy"] == s, "round"]) - {0}
              for s in ("winning_ticket", versus)}
    both = rounds["winning_ticket"] & rounds[versus]
    if not both:
        return f"{results.title}: no {versus.replace('_', ' ')} runs to compare with."
    last = max(both)
    t = table[(table["strategy"] == "winning_ticket") & (table["round"] == last)].iloc[0]
    o = table[(table["strategy"] == versus) & (table["round"] == last)].iloc[0]
    faster = t.early_stop_iteration < o.early_stop_iteration
    better = t.early_stop_test_accuracy > o.early_stop_test_accuracy
    return (f"{results.title} at Pm = {t.pm:.1f}%: winning tickets stop at iteration "
            f"{t.early_stop_iteration:,.0f} vs {o.early_stop_iteration:,.0f} for "
            f"{STRATEGY_LABELS[versus].lower()} ({'sooner' if faster else 'not sooner'}), "
            f"with test accuracy {100 * t.early_stop_test_accuracy:.2f}% vs "
            f"{100 * o.early_stop_test_accuracy:.2f}% "
            f"({'higher' if better else 'not higher'}); mean of {results.trials} trial(s).")


def run_table(results_list) -> pd.DataFrame:
    """What was run, from each folder (`describe_run`) and its params.yaml (parameters and
    provenance): one column per experiment, one row per field (narrow enough for a page);
    a field the folder does not record reads `MISSING`."""
    columns = {}
    for r in results_list:
        hp, p, d = r.hp, r.params, describe_run(r)
        columns[ARCH_NAMES[hp.arch]] = {
            "dataset": DATASET_NAMES[hp.dataset], "preset": hp.preset,
            "strategies": ", ".join(SHORT_NAMES[s] for s in d.strategies) or MISSING,
            "trials": len(d.trials), "iterations": f"{hp.iterations:,}",
            "rounds": f"{spans(d.rounds)} of {d.planned_rounds}" if d.rounds else MISSING,
            "Pm range (%)": f"100 to {d.pm_min:.1f}" if d.rounds else MISSING,
            "networks": f"{d.done} of {d.planned}",
            "evaluated on": (f"first {hp.eval_limit:,} examples per split" if hp.eval_limit
                             else "all examples"),
            "device": p.get("device", MISSING), "CPU threads": p.get("threads", MISSING),
            "engine": p.get("engine", "reference"),
            "torch": p.get("torch", MISSING), "results folder": Path(r.folder).name,
        }
    return pd.DataFrame(columns)
