"""The paper's quantitative claims (params/claims.yaml) as data, and their measures on results.

Each claim names a measure computed from summary.csv (early-stopping iteration, test accuracy
at early stopping or at the end of training, Pm), the paper's value and how to compare: within
a tolerance, above or below. `measure` computes a claim's measure on one results folder, or
says why it cannot (no round near the claim's Pm); the verdicts, tables and notes of evaluated
claims are claims_report.py's.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import yaml

from .analysis import PM_TOLERANCE, match_pm_levels, round_pms
from .config import STRATEGIES
from .errors import LTHError
from .paper import FIGURE_2
from .presets import CLAIMS_FILE

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

    def settled(self, value: float) -> bool:
        """Whether `value`, the smallest or largest gain over the rounds run so far (a partial
        `min_` or `max_` measure), already decides the verdict: more rounds can only lower a
        minimum or raise a maximum, so a minimum that fails `above` (or meets `below`) and a
        maximum that meets `above` (or fails `below`) stay so. A `within` check never is."""
        if self.check == "within":
            return False
        holds = self.verdict(value) == "holds"
        return (self.check == "above") == (holds if self.measure["name"].startswith("max_")
                                          else not holds)


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
    partial: bool = False  # the run has not reached the claim's Pm yet: no verdict, unless
    #                        the rounds so far already decide it (`Claim.settled`)


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
