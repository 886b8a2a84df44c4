"""The paper's claims evaluated on results: verdicts, the tables and the notes beside them.

A claim's verdict is "holds", "does not hold" or "not run" (no results for the network, or no
round near the claim's Pm, unless the rounds so far already decide it: `Claim.settled`). A
claim is never adjusted to the results: a run that deviates from the paper's protocol says so
beside the table (`deviations`, `protocol_note`). The table is
shown in notebooks (`styled_table`), the report, the README and the command line (`markdown`);
`sensitivity` sets a variant preset's verdicts beside the paper run's.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .analysis import markdown_table
from .claims import Measured, load_claims, measure
from .config import Hparams
from .paper import CONTROLS_PER_POINT, FIGURE_2, NORMALIZATIONS
from .run_data import ARCH_NAMES, behind, load_results
from .store import Store, results_folder

# Hparams fields that name or seed a run rather than set its protocol.
NOT_PROTOCOL = ("arch", "dataset", "datasets", "preset", "strategies", "seed")
VERDICTS = ("holds", "does not hold", "not run")


def deviations(hp: Hparams) -> list:
    """How a run's parameters differ from the paper's protocol, e.g. `iterations 4,000
    (paper 50,000)`, or from this project's choice where the paper states none (the input
    normalization), and how many controls it averages where the paper has more per trial;
    empty for the paper's protocol."""
    mine, theirs = hp.to_dict(), Hparams.paper(hp.arch, hp.dataset).to_dict()
    out = []
    for key in mine:
        if key in NOT_PROTOCOL or mine[key] == theirs[key]:
            continue
        fmt = (lambda v: f"{v:,}") if isinstance(mine[key], int) else str
        if key == "eval_limit":  # 0 is the paper's: every example
            fmt = lambda v: f"first {v:,} examples" if v else "all examples"  # noqa: E731
        paper = ("not stated; this project's default: " if key == "normalization" else "")
        out.append(f"{key} {fmt(mine[key])} (paper: {paper}{fmt(theirs[key])})")
    for strategy, paper_count in CONTROLS_PER_POINT.items():
        if strategy in hp.strategies and hp.trials != paper_count:
            out.append(f"{strategy} {hp.trials} per point, one per trial (paper: {paper_count})")
    return out


def protocol_note(results) -> str:
    """One line on what a results folder ran: the paper's protocol or how it deviates, and
    how far a run still in progress has come."""
    hp, done = results.hp, int(results.summary["round"].max())
    protocol = "; ".join(deviations(hp)) or "the paper's protocol"
    lagging = behind(results.summary)
    partial = f" Partial: rounds 0 to {done} of {hp.rounds} so far" \
        f"{'; ' + lagging if lagging else ''}." if done < hp.rounds or lagging else ""
    return f"{ARCH_NAMES[hp.arch]}, preset `{hp.preset}`: {protocol}.{partial}"


def evaluate_claims(results: dict, claims: list | None = None) -> pd.DataFrame:
    """One row per claim: the paper's value, this run's value (mean, min-max over trials), the
    verdict. `results` maps network (lenet, conv2, ...) to its `Results`; a network missing
    from it, or mapped to None, makes its claims "not run"."""
    rows = []
    for claim in claims if claims is not None else load_claims():
        r = results.get(claim.network)
        got = measure(claim, r.summary) if r is not None else "no results"
        row = {"id": claim.id, "network": ARCH_NAMES[claim.network], "where": claim.where,
               "quote": " ".join(claim.quote.split()), "paper": claim.expectation(),
               "preset": r.hp.preset if r is not None else "", "unit": claim.unit,
               "value": math.nan,
               "low": math.nan, "high": math.nan, "trials": 0, "at Pm (%)": math.nan,
               "verdict": "not run", "note": got if isinstance(got, str) else got.note}
        if isinstance(got, Measured):
            row.update(value=got.value, low=got.low, high=got.high, trials=got.trials)
            row["at Pm (%)"] = round(got.pm, 1)
            settled = got.partial and claim.settled(got.value)
            if not got.partial or settled:
                row["verdict"] = claim.verdict(got.value)
            if settled:
                row["note"] += "; more rounds cannot change the verdict"
        rows.append(row)
    return pd.DataFrame(rows)


def claims_table(evaluated: pd.DataFrame) -> pd.DataFrame:
    """`evaluate_claims` for reading: this run's value as `mean (min to max)` with its unit."""
    def shown(row):
        if math.isnan(row["value"]):
            return ""
        unit = row["unit"]
        digits = 1 if unit == "%" else 2
        if row["trials"] < 2 or row["low"] == row["high"]:
            return f"{row['value']:.{digits}f} {unit}"
        return (f"{row['value']:.{digits}f} ({row['low']:.{digits}f} to "
                f"{row['high']:.{digits}f}) {unit}")

    at = evaluated["at Pm (%)"].map(lambda v: "" if math.isnan(v) else f"{v:.1f}")
    table = evaluated.assign(**{"this run": evaluated.apply(shown, axis=1), "at Pm (%)": at})
    return table[["network", "quote", "where", "paper", "this run", "trials", "at Pm (%)",
                  "preset", "verdict", "note"]]


VERDICT_COLORS = {"holds": "#d8f0d8", "does not hold": "#f6d5d5", "not run": "#eeeeee"}


def styled_table(evaluated: pd.DataFrame):
    """`claims_table` with each verdict on its colour (for notebooks and the report)."""
    return claims_table(evaluated).style.map(
        lambda v: f"background-color: {VERDICT_COLORS.get(v, 'transparent')}",
        subset=["verdict"]).set_properties(subset=["quote", "note"], **{"text-align": "left"}) \
        .hide(axis="index")


def verdict_counts(evaluated: pd.DataFrame) -> dict:
    """{verdict: number of claims}, in the order of VERDICTS."""
    counts = evaluated["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


PLURALS = {"holds": "hold", "does not hold": "do not hold", "not run": "not run"}


def counted(verdict: str, n: int) -> str:
    """`n` claims of `verdict` in words: "1 holds", "13 hold", "2 do not hold"."""
    return f"{n} {verdict if n == 1 else PLURALS[verdict]}"


def verdict_summary(evaluated: pd.DataFrame) -> str:
    """The counts, then which claims hold and which do not, by id, each that does not with
    the paper's value and this run's: `1 holds, 2 do not hold, 19 not run. Holds:
    lenet-pm-round3. Does not hold: lenet-speedup-vs-reinit (paper 2.51 ± 0.75 x, this run
    1.62 x at Pm 21.1%), ...`"""
    counts = ", ".join(counted(v, n) for v, n in verdict_counts(evaluated).items())
    shown = claims_table(evaluated).assign(id=evaluated["id"])
    holds = list(shown.loc[shown["verdict"] == "holds", "id"])
    fails = [f"{r.id} (paper {r.paper}, this run {r['this run']} at Pm {r['at Pm (%)']}%)"
             for _, r in shown[shown["verdict"] == "does not hold"].iterrows()]
    which = ([f"Holds: {', '.join(holds)}."] if holds else []) + \
        ([f"Does not hold: {', '.join(fails)}."] if fails else [])
    return " ".join([f"{counts}.", *which])


def load_runs(results_dir, preset: str) -> dict:
    """{network: Results} of every network with results of `preset` in `results_dir`
    (each on the paper's dataset, with the parameters its params.yaml records)."""
    runs = {}
    for arch, spec in FIGURE_2.items():
        folder = results_folder(results_dir, arch, spec.dataset, preset)
        if Store(folder).has_results:
            runs[arch] = load_results(folder)
    return runs


# Presets of the paper's protocol that vary one choice the paper leaves open (README,
# "What does not reproduce"), each beside `paper` in the sensitivity table.
VARIANTS = ("paper_standardize",)
BASE = "paper"


def run_folders(results_dir, preset: str, own: bool = True) -> list:
    """The run folders (`<arch>_<dataset>_<preset>/` with a params.yaml recording `preset`)
    of `preset` and, for the sensitivity table's base, of its variants (VARIANTS), sorted:
    every run a build of `preset` reads or shows (the overview, the anatomy views). Without
    `own`, the variants' only."""
    presets = ([preset] if own else []) + (list(VARIANTS) if preset == BASE else [])
    return sorted(f for p in presets for f in Path(results_dir).glob(f"*_{p}")
                  if (store := Store(f)).has_params and store.read_hparams().preset == p)


def variant_runs(results_dir, base: str = BASE, variants=VARIANTS,
                 base_runs: dict | None = None) -> dict:
    """{label: {network: Results}}: the `base` run and each variant's, of the networks some
    variant has results for, each labelled by its preset and input normalization, e.g.
    'paper (x/255)'; empty when no variant has results. `base_runs`: the `base` preset's
    `load_runs`, where already loaded."""
    runs = {p: base_runs if p == base and base_runs is not None else load_runs(results_dir, p)
            for p in (base, *variants)}
    networks = {n for p in variants for n in runs[p]}
    kept = {p: {n: r for n, r in by.items() if n in networks} for p, by in runs.items()}
    return {run_label(p, by): by for p, by in kept.items()} if networks else {}


def run_label(preset: str, runs: dict) -> str:
    """`preset` and the input normalization of its `runs` ({network: Results}), e.g.
    'paper_standardize (standardized)'; the preset alone when it has no runs."""
    names = sorted({NORMALIZATIONS[r.hp.normalization] for r in runs.values()})
    return f"{preset} ({', '.join(names)})" if names else preset


def sensitivity(results_dir, base: str = BASE, variants=VARIANTS,
                by_label: dict | None = None) -> pd.DataFrame:
    """The claims of every network that a variant preset has results for, evaluated on the
    `base` run and on each variant's, side by side: one row per claim, for each preset its
    value (mean, min to max over trials) and verdict, after a first row per network with its
    dense networks' test accuracy at early stopping. Empty when no variant has results.
    `by_label`: the runs `variant_runs` gives, where already loaded."""
    by_label = variant_runs(results_dir, base, variants) if by_label is None else by_label
    networks = {n for runs in by_label.values() for n in runs}
    claims = [c for c in load_claims() if c.network in networks]
    if not claims:
        return pd.DataFrame()
    table, dense = None, {}
    for label, runs in by_label.items():
        shown = claims_table(evaluate_claims(runs, claims)).assign(
            id=[c.id for c in claims])
        value = shown["this run"].where(shown["this run"] != "", "-")
        column = shown[["id", "network", "paper"]].copy() if table is None else table
        column[f"{label}"] = value + ": " + shown["verdict"]
        table = column
        dense[label] = [_dense_accuracy(runs.get(n)) for n in sorted(networks)]
    baseline = pd.DataFrame({"id": "dense-accuracy", "network": [ARCH_NAMES[n] for n in
                                                                sorted(networks)],
                             "paper": "not stated", **dense})
    return pd.concat([baseline, table], ignore_index=True)


def _dense_accuracy(results) -> str:
    """The dense networks' test accuracy at early stopping: mean (min to max) over trials,
    the level every accuracy claim is measured against."""
    if results is None:
        return "-"
    s = results.summary
    acc = 100 * s[(s["strategy"] == "winning_ticket") & (s["round"] == 0)][
        "early_stop_test_accuracy"]
    return f"{acc.mean():.2f} ({acc.min():.2f} to {acc.max():.2f}) %" if len(acc) else "-"


def markdown(evaluated: pd.DataFrame, runs: dict) -> str:
    """The claims table and the runs' protocol notes as Markdown (for the README)."""
    notes = [f"- {protocol_note(r)}" for r in runs.values()] or ["- no results"]
    return "\n".join([f"Claims: {verdict_summary(evaluated)}", "",
                      markdown_table(claims_table(evaluated)), "",
                      *notes])
