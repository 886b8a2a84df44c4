"""The paper's quantitative claims (params/claims.yaml), evaluated on results folders.

Each claim names a measure computed from summary.csv (early-stopping iteration, test accuracy
at early stopping or at the end of training, Pm), the paper's value and how to compare: within a tolerance, above or
below. The verdict is "holds", "does not hold" or "not run" (no results for the network, or
no round near the claim's Pm). A claim is never adjusted to the results: a run that deviates
from the paper's protocol says so beside the table (`deviations`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import yaml

from .analysis import PM_TOLERANCE, markdown_table, match_pm_levels, round_pms
from .config import STRATEGIES, Hparams
from .errors import LTHError
from .paper import CONTROLS_PER_POINT, FIGURE_2
from .presets import CLAIMS_FILE
from .run_data import ARCH_NAMES, load_results
from .store import Store, results_folder

# measure name -> (unit, the keys it takes)
MEASURES = {
    "pm": ("%", {"round"}),
    "speedup": ("x", {"pm", "versus", "strategy"}),
    "accuracy_gain": ("pp", {"pm", "versus", "strategy", "at"}),
    "min_accuracy_gain": ("pp", {"pm_above", "at"}),
    "max_accuracy_gain": ("pp", {"pm_above", "at"}),
}
# `at` of an accuracy measure -> the summary column it reads
ACCURACY_AT = {"early_stop": "early_stop_test_accuracy", "final": "final_test_accuracy"}
CHECKS = ("within", "above", "below")
# Hparams fields that name or seed a run rather than set its protocol.
NOT_PROTOCOL = ("arch", "dataset", "datasets", "preset", "strategies", "seed")
VERDICTS = ("holds", "does not hold", "not run")


@dataclass(frozen=True)
class Claim:
    id: str
    network: str
    quote: str
    where: str
    measure: dict
    paper: float
    check: str
    tolerance: float | None = None

    @property
    def unit(self) -> str:
        return MEASURES[self.measure["name"]][0]

    def expectation(self) -> str:
        """The paper's value as the check reads it: `2.51 ± 0.75 x`, `> 0.3 pp`."""
        paper = f"{self.paper:.1f}" if self.unit == "%" else f"{self.paper:g}"
        if self.check == "within":
            return f"{paper} ± {self.tolerance:g} {self.unit}"
        return f"{'>' if self.check == 'above' else '<'} {paper} {self.unit}"

    def verdict(self, value: float) -> str:
        ok = {"within": lambda: abs(value - self.paper) <= self.tolerance + 1e-9,
              "above": lambda: value > self.paper,
              "below": lambda: value < self.paper}[self.check]()
        return "holds" if ok else "does not hold"


def _claim(entry, where: str) -> Claim:
    if not isinstance(entry, dict):
        raise LTHError(f"{where}: a claim must be a mapping, not {entry!r}")
    names = {f.name for f in fields(Claim)}
    unknown = set(entry) - names
    missing = {f.name for f in fields(Claim) if f.name != "tolerance"} - set(entry)
    if unknown or missing:
        what = (f"unknown key {sorted(unknown)[0]!r}" if unknown
                else f"missing key {sorted(missing)[0]!r}")
        raise LTHError(f"{where}: {what} (a claim has {', '.join(sorted(names))})")
    claim = Claim(**entry)
    label = f"{where} ({claim.id})"
    if claim.network not in FIGURE_2:
        raise LTHError(f"{label}: unknown network {claim.network!r}")
    m = claim.measure
    if not isinstance(m, dict) or m.get("name") not in MEASURES:
        raise LTHError(f"{label}: measure needs a name among {', '.join(MEASURES)}")
    extra = set(m) - {"name"} - MEASURES[m["name"]][1]
    if extra:
        raise LTHError(f"{label}: measure {m['name']} takes no {sorted(extra)[0]!r}")
    for key in ("strategy", "versus"):
        if key in m and m[key] not in (*STRATEGIES, "dense"):
            raise LTHError(f"{label}: unknown {key} {m[key]!r}")
    if m["name"].endswith("_accuracy_gain") and "pm_above" not in m:
        raise LTHError(f"{label}: measure {m['name']} needs pm_above")
    if m.get("at", "early_stop") not in ACCURACY_AT:
        raise LTHError(f"{label}: at must be one of {', '.join(ACCURACY_AT)}")
    if claim.check not in CHECKS:
        raise LTHError(f"{label}: check must be one of {', '.join(CHECKS)}")
    if not isinstance(claim.paper, (int, float)) or (
            claim.check == "within" and not isinstance(claim.tolerance, (int, float))):
        raise LTHError(f"{label}: paper (and tolerance, for within) must be numbers")
    return claim


def load_claims(path=CLAIMS_FILE) -> list:
    """The claims of a claims file, checked (a malformed one is a one-line LTHError)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise LTHError(f"cannot read claims file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise LTHError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise LTHError(f"{path}: expected a mapping with a list under 'claims'")
    claims = [_claim(entry, f"{path}, claim {i + 1}") for i, entry in enumerate(data["claims"])]
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise LTHError(f"{path}: claim ids must be unique")
    return claims


# --- measuring ------------------------------------------------------------------------------

@dataclass
class Measured:
    value: float       # mean over trials (ratio of means for speedup)
    low: float         # min and max of the per-trial values
    high: float
    trials: int
    pm: float          # the Pm it was measured at
    note: str = ""
    partial: bool = False  # the run has not reached the claim's Pm yet: no verdict


def _per_trial(summary: pd.DataFrame, strategy: str, round_: int, column: str) -> pd.Series:
    rows = summary[(summary["strategy"] == strategy) & (summary["round"] == round_)]
    return rows.set_index("trial")[column].astype(float)


def _compare(summary, name, strategy, versus, round_, at="early_stop") -> Measured | None:
    column = "early_stop_iteration" if name == "speedup" else ACCURACY_AT[at]
    mine = _per_trial(summary, strategy, round_, column)
    other = (_per_trial(summary, "winning_ticket", 0, column) if versus == "dense"
             else _per_trial(summary, versus, round_, column))
    trials = mine.index.intersection(other.index)
    if trials.empty:
        return None
    mine, other = mine[trials], other[trials]
    if name == "speedup":
        each, value = other / mine, other.mean() / mine.mean()
    else:
        each = 100 * (mine - other)
        value = each.mean()
    pm = float(summary[(summary["round"] == round_)]["pm"].mean())
    return Measured(float(value), float(each.min()), float(each.max()), len(trials), pm)


def measure(claim: Claim, summary: pd.DataFrame) -> Measured | str:
    """The claim's measure on one results folder's summary (dense rows included, as
    `run_data.load_results` gives them); a string says why it cannot be measured."""
    m = claim.measure
    name, strategy = m["name"], m.get("strategy", "winning_ticket")
    tickets = summary[summary["strategy"] == "winning_ticket"]
    if name == "pm":
        rows = tickets[tickets["round"] == m["round"]]
        if rows.empty:
            return f"round {m['round']} not run (last round {int(tickets['round'].max())})"
        pm = float(rows["pm"].mean())
        return Measured(pm, pm, pm, int(rows["trial"].nunique()), pm)
    at = m.get("at", "early_stop")
    if name in ("min_accuracy_gain", "max_accuracy_gain"):
        pms = round_pms(tickets)
        above = m["pm_above"]
        rounds = [r for r, pm in pms.items() if r > 0 and pm > above]
        gains = [g for g in (_compare(summary, "accuracy_gain", "winning_ticket", "dense", r, at)
                             for r in rounds) if g is not None]
        if not gains:
            return "no pruned rounds"
        pick = min if name == "min_accuracy_gain" else max
        extreme = pick(gains, key=lambda g: g.value)
        word = "smallest" if pick is min else "largest"
        extreme.note = f"the {word} gain over the rounds with Pm > {above:g}%"
        if min(pms.values()) > above * (1 + PM_TOLERANCE):
            extreme.partial = True
            extreme.note = (f"rounds reach only Pm {min(pms.values()):.1f}%, not "
                            f"{above:g}%: the {word} gain so far")
        return extreme
    found, _ = match_pm_levels(round_pms(summary[summary["strategy"] == strategy]), [m["pm"]])
    if not found:
        return f"no {strategy.replace('_', ' ')} round near Pm {m['pm']:g}%"
    result = _compare(summary, name, strategy, m["versus"], found[m["pm"]], at)
    return result if result is not None else f"no {m['versus'].replace('_', ' ')} runs"


def deviations(hp: Hparams) -> list:
    """How a run's parameters differ from the paper's protocol, e.g. `iterations 4,000
    (paper 50,000)`, and how many controls it averages where the paper has more per trial;
    empty for the paper's protocol."""
    mine, theirs = hp.to_dict(), Hparams.paper(hp.arch, hp.dataset).to_dict()
    out = []
    for key in mine:
        if key in NOT_PROTOCOL or mine[key] == theirs[key]:
            continue
        fmt = (lambda v: f"{v:,}") if isinstance(mine[key], int) else str
        if key == "eval_limit":  # 0 is the paper's: every example
            fmt = lambda v: f"first {v:,} examples" if v else "all examples"  # noqa: E731
        out.append(f"{key} {fmt(mine[key])} (paper: {fmt(theirs[key])})")
    for strategy, paper_count in CONTROLS_PER_POINT.items():
        if strategy in hp.strategies and hp.trials != paper_count:
            out.append(f"{strategy} {hp.trials} per point, one per trial (paper: {paper_count})")
    return out


def protocol_note(results) -> str:
    """One line on what a results folder ran: the paper's protocol or how it deviates, and
    how far a run still in progress has come."""
    hp, done = results.hp, int(results.summary["round"].max())
    protocol = "; ".join(deviations(hp)) or "the paper's protocol"
    partial = f" Partial: rounds 0 to {done} of {hp.rounds} so far." if done < hp.rounds else ""
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
            if not got.partial:
                row["verdict"] = claim.verdict(got.value)
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


def verdict_summary(evaluated: pd.DataFrame) -> str:
    """The counts, then which claims hold and which do not, by id, each that does not with
    the paper's value and this run's: `1 holds, 1 does not hold, 19 not run. Holds:
    lenet-pm-round3. Does not hold: lenet-speedup-vs-reinit (paper 2.51 ± 0.75 x, this run
    1.62 x at Pm 21.1%).`"""
    counts = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(evaluated).items())
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
VARIANTS = {"paper_scale": "normalization: x/255"}


def sensitivity(results_dir, base: str = "paper", variants=VARIANTS) -> pd.DataFrame:
    """The claims of every network that a variant preset has results for, evaluated on the
    `base` run and on each variant's, side by side: one row per claim, for each preset its
    value (mean, min to max over trials) and verdict, after a first row per network with its
    dense networks' test accuracy at early stopping. Empty when no variant has results."""
    variant_runs = {v: load_runs(results_dir, v) for v in variants}
    networks = {n for runs in variant_runs.values() for n in runs}
    claims = [c for c in load_claims() if c.network in networks]
    if not claims:
        return pd.DataFrame()
    table, dense = None, {}
    for preset, label in {base: f"{base} (standardized)", **variants}.items():
        runs = load_runs(results_dir, preset)
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
