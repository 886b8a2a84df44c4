"""The claims file and the claim evaluation (lth_utils.claims and
lth_utils.claims_report), on hand-made summaries."""
import dataclasses
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from lth_utils import claims, claims_report
from lth_utils.config import Hparams
from lth_utils.errors import LTHError
from lth_utils.presets import resolve
from lth_utils.formats import METRICS_COLUMNS


def summary(rows):
    """A summary table from (strategy, trial, round, pm, early-stop iteration, accuracy);
    the final test accuracy is the early-stop one minus 0.001."""
    table = pd.DataFrame(rows, columns=["strategy", "trial", "round", "pm",
                                        "early_stop_iteration", "early_stop_test_accuracy"])
    return table.assign(final_test_accuracy=table["early_stop_test_accuracy"] - 0.001)


def lenet(rows):
    return {"lenet": SimpleNamespace(summary=summary(rows), hp=Hparams.paper("lenet"))}


def claim(**measure):
    name = measure.pop("name")
    return claims.Claim(id="c", network="lenet", quote="q", where="w",
                        measure={"name": name, **measure}, paper=2.51, check="within",
                        tolerance=0.75)


DENSE = [("winning_ticket", 0, 0, 100.0, 1000, 0.980), ("winning_ticket", 1, 0, 100.0, 1200, 0.982)]
ROUND7 = [("winning_ticket", 0, 7, 21.1, 400, 0.986), ("winning_ticket", 1, 7, 21.1, 600, 0.984),
          ("random_reinit", 0, 7, 21.1, 1000, 0.980), ("random_reinit", 1, 7, 21.1, 1000, 0.981)]


def test_the_claims_file_has_the_papers_claims():
    loaded = claims.load_claims()
    by_id = {c.id: c for c in loaded}
    assert [by_id[f"lenet-pm-round{r}"].paper for r in (3, 7, 12, 15, 18)] == \
        [51.3, 21.1, 7.0, 3.6, 1.9]
    assert by_id["lenet-speedup-vs-reinit"].paper == 2.51
    assert {c.network for c in loaded} == {"lenet", "conv2", "conv4", "conv6"}
    assert all(c.quote and c.where for c in loaded)


def test_speedup_is_a_ratio_of_means_with_the_per_trial_range():
    got = claims.measure(claim(name="speedup", pm=21.1, versus="random_reinit"),
                         summary(DENSE + ROUND7))
    assert got.value == pytest.approx(1000 / 500)
    assert (got.low, got.high) == pytest.approx((1000 / 600, 1000 / 400))
    assert (got.trials, got.pm) == (2, 21.1)


def test_accuracy_gain_is_in_percentage_points_against_dense_or_a_control():
    vs_dense = claims.measure(claim(name="accuracy_gain", pm=21.1, versus="dense"),
                              summary(DENSE + ROUND7))
    assert vs_dense.value == pytest.approx(0.4)
    assert (vs_dense.low, vs_dense.high) == pytest.approx((0.2, 0.6))
    reinit = claims.measure(claim(name="accuracy_gain", pm=21.1, strategy="random_reinit",
                                  versus="dense"), summary(DENSE + ROUND7))
    assert reinit.value == pytest.approx(-0.05)


def test_verdicts_follow_the_check():
    c = claim(name="speedup", pm=21.1, versus="random_reinit")
    assert c.verdict(2.0) == "holds" and c.verdict(1.7) == "does not hold"
    above = claims.Claim("a", "lenet", "q", "w", {"name": "pm", "round": 1}, 0.3, "above")
    assert above.verdict(0.31) == "holds" and above.verdict(0.3) == "does not hold"
    below = claims.Claim("b", "lenet", "q", "w", {"name": "pm", "round": 1}, 1.0, "below")
    assert below.verdict(0.9) == "holds" and below.verdict(1.2) == "does not hold"


def test_a_claim_without_results_or_without_its_pm_is_not_run():
    table = claims_report.evaluate_claims(lenet(DENSE + ROUND7), claims.load_claims())
    verdicts = dict(zip(table["id"], table["verdict"]))
    assert verdicts["lenet-speedup-vs-reinit"] == "holds"          # 2.0 within 2.51 ± 0.75
    assert verdicts["lenet-accuracy-vs-reinit"] == "holds"         # 0.45 within 0.5 ± 0.3
    assert verdicts["lenet-pm-round7"] == "holds"
    assert verdicts["lenet-accuracy-gain-13.5"] == "not run"       # no round near 13.5%
    assert verdicts["conv2-speedup"] == "not run"                  # no conv2 results
    row = table.set_index("id").loc["lenet-accuracy-gain-13.5"]
    assert math.isnan(row["value"]) and "13.5" in row["note"]


def test_a_claim_that_fails_is_reported_as_failing():
    slow = [(s, t, r, pm, 900 if s == "winning_ticket" else 1000, acc)
            for s, t, r, pm, _, acc in ROUND7]
    table = claims_report.evaluate_claims(lenet(DENSE + slow), claims.load_claims())
    row = table.set_index("id").loc["lenet-speedup-vs-reinit"]
    assert row["verdict"] == "does not hold" and row["value"] == pytest.approx(1000 / 900)
    assert [claims_report.counted(v, n) for v, n in [("holds", 1), ("holds", 0),
                                                    ("does not hold", 2), ("not run", 1)]] \
        == ["1 holds", "0 hold", "2 do not hold", "1 not run"]
    said = claims_report.verdict_summary(table)
    assert said.startswith("4 hold, 1 does not hold, 19 not run. Holds: lenet-pm-round7, ")
    assert said.endswith("Does not hold: lenet-speedup-vs-reinit (paper 2.51 ± 0.75 x, "
                         "this run 1.11 x at Pm 21.1%).")


def test_staying_above_dense_needs_rounds_down_to_the_claims_pm():
    rows = [("winning_ticket", 0, 0, 100.0, 1000, 0.60), ("winning_ticket", 0, 1, 80.0, 900, 0.62),
            ("winning_ticket", 0, 2, 64.0, 800, 0.61)]
    c = claims.Claim("x", "conv2", "q", "w", {"name": "min_accuracy_gain", "pm_above": 2.0},
                     0.0, "above")
    partial = claims.measure(c, summary(rows))
    assert partial.value == pytest.approx(1.0) and "only Pm 64.0%" in partial.note
    assert partial.partial and not c.settled(partial.value)  # later rounds may still fall
    rows += [("winning_ticket", 0, 3, 1.9, 700, 0.55)]               # Pm 1.9%: not counted
    full = claims.measure(c, summary(rows))
    assert full.value == pytest.approx(1.0) and not full.partial
    assert full.note == "the smallest gain over the rounds with Pm > 2%"
    assert c.verdict(full.value) == "holds"


@pytest.mark.parametrize("name,check,value,settled", [
    ("min_accuracy_gain", "above", -0.1, True),   # a minimum only falls: fails for good
    ("min_accuracy_gain", "above", 0.1, False),
    ("min_accuracy_gain", "below", -0.1, True),   # already below: stays below
    ("max_accuracy_gain", "above", 0.1, True),    # a maximum only rises: holds for good
    ("max_accuracy_gain", "above", -0.1, False),
    ("max_accuracy_gain", "below", 0.1, True),
    ("max_accuracy_gain", "within", 0.0, False)])
def test_a_partial_extreme_decides_a_one_sided_claim_only_where_more_rounds_cannot(
        name, check, value, settled):
    c = claims.Claim("x", "lenet", "q", "w", {"name": name, "pm_above": 2.9}, 0.0, check,
                     0.3 if check == "within" else None)
    assert c.settled(value) is settled


def test_a_run_already_below_dense_fails_staying_above_dense_before_reaching_its_pm():
    """lenet-above-dense-2.9 on a run that has reached only Pm 80%, with the winning
    tickets below their dense networks there: "does not hold", said to be final."""
    rows = [("winning_ticket", t, r, pm, 1000, acc - 0.001 * r)
            for t, acc in ((0, 0.98), (1, 0.981)) for r, pm in ((0, 100.0), (1, 80.0))]
    table = claims_report.evaluate_claims(lenet(rows), claims.load_claims()).set_index("id")
    row = table.loc["lenet-above-dense-2.9"]
    assert row["verdict"] == "does not hold" and row["value"] == pytest.approx(-0.1)
    assert row["note"].endswith("so far; more rounds cannot change the verdict")
    assert table.loc["lenet-final-accuracy-gain", "verdict"] == "not run"  # within: open


def test_the_largest_gain_at_the_end_of_training_reads_the_final_accuracy():
    rows = [("winning_ticket", 0, 0, 100.0, 1000, 0.980), ("winning_ticket", 0, 1, 80.0, 900, 0.990),
            ("winning_ticket", 0, 2, 64.0, 800, 0.984), ("winning_ticket", 0, 3, 1.8, 700, 0.999)]
    c = claims.Claim("x", "lenet", "q", "w", {"name": "max_accuracy_gain", "pm_above": 1.9,
                                               "at": "final"}, 0.35, "within", 0.3)
    got = claims.measure(c, summary(rows).assign(final_test_accuracy=[0.97, 0.975, 0.979, 1.0]))
    assert got.value == pytest.approx(0.9) and got.pm == 64.0     # Pm 1.8% is not counted
    assert not got.partial and c.verdict(got.value) == "does not hold"
    at_early_stop = claims.Claim("y", "lenet", "q", "w", {"name": "max_accuracy_gain",
                                                          "pm_above": 1.9}, 0.35, "within", 0.3)
    assert claims.measure(at_early_stop, summary(rows)).value == pytest.approx(1.0)


def test_deviations_name_what_differs_from_the_paper():
    assert claims_report.deviations(dataclasses.replace(Hparams.paper("lenet"), strategies=(
        "winning_ticket", "oneshot"))) == []
    assert claims_report.deviations(Hparams.paper("lenet")) == [
        "random_reinit 5 per point, one per trial (paper: 15)",
        "random_sparse 5 per point, one per trial (paper: 10)"]
    assert claims_report.deviations(resolve("lenet", preset="paper_standardize")) == [
        "normalization standardize (paper: not stated; this project's default: scale)",
        "random_reinit 5 per point, one per trial (paper: 15)",
        "random_sparse 5 per point, one per trial (paper: 10)"]
    quick = claims_report.deviations(resolve("conv2", None, "quick"))
    assert "iterations 200 (paper: 20,000)" in quick
    assert any(d.startswith("eval_limit first 1,000 examples") for d in quick)


@pytest.mark.parametrize("text, message", [
    ("claims: [{id: a}]", "missing key"),
    ("claims:\n- {id: a, network: lenet, quote: q, where: w, measure: {name: pm, round: 1},"
     " paper: 1, check: within, tolerance: 1, extra: 1}", "unknown key 'extra'"),
    ("claims:\n- {id: a, network: lenet, quote: q, where: w, measure: {name: speed},"
     " paper: 1, check: within, tolerance: 1}", "measure needs a name"),
    ("claims:\n- {id: a, network: lenet, quote: q, where: w, measure: {name: pm, round: 1},"
     " paper: 1, check: near}", "check must be one of"),
    ("claims:\n- {id: a, network: lenet, quote: q, where: w, measure: {name: pm, round: 1},"
     " paper: 1, check: within}", "must be numbers"),
    ("claims:\n- {id: a, network: vgg, quote: q, where: w, measure: {name: pm, round: 1},"
     " paper: 1, check: above}", "unknown network"),
    ("claims:\n- {id: a, network: lenet, quote: q, where: w, measure: {name: accuracy_gain,"
     " pm: 3.6, versus: dense, at: best}, paper: 1, check: above}", "at must be one of"),
    ("claims:\n- {id: a, network: lenet, quote: q, where: w, measure: {name: max_accuracy_gain},"
     " paper: 1, check: above}", "needs pm_above"),
    ("claims: [unclosed", "not valid YAML"),
    ("- just a list", "expected a mapping"),
])
def test_a_malformed_claims_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(LTHError, match=message):
        claims.load_claims(path)


def test_a_strategy_behind_the_others_is_named_in_the_protocol_note():
    """A run whose winning tickets have every round but whose controls stop earlier is
    partial, and says which strategies are behind and where they stop."""
    full = [("winning_ticket", 0, r, 100 * 0.8 ** r, 1000, 0.98) for r in range(19)]
    behind = [("random_reinit", 0, 7, 21.1, 1000, 0.98), ("random_sparse", 0, 7, 21.1, 1, 0.9),
              ("oneshot", 0, 9, 13.5, 1000, 0.98)]
    note = claims_report.protocol_note(lenet(full + behind)["lenet"])
    assert note.endswith("Partial: rounds 0 to 18 of 18 so far; reinit and random "
                         "sparse to round 7; one-shot to round 9."), note
    assert "Partial" not in claims_report.protocol_note(lenet(full)["lenet"])


def test_claims_command_prints_the_table_of_a_results_folder(tmp_path, capsys):
    """`python -m lth_utils claims` on a folder holding only a summary and params.yaml."""
    from lth_utils import cli
    folder = tmp_path / "lenet_mnist_paper"
    folder.mkdir()
    rows = summary(DENSE + ROUND7).assign(arch="lenet", dataset="mnist")
    rows.to_csv(folder / "summary.csv", index=False)
    (folder / "metrics.csv").write_text(",".join(METRICS_COLUMNS) + "\n")  # not read here
    (folder / "params.yaml").write_text(yaml.safe_dump({"hparams": Hparams.paper("lenet")
                                                        .to_dict()}))
    assert cli.main(["claims", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| LeNet-300-100 | When Pm = 21%" in out and "2.00 (1.67 to 2.50) x" in out
    assert ("preset `paper`: random_reinit 5 per point, one per trial (paper: 15); random_sparse "
            "5 per point, one per trial (paper: 10). Partial: rounds 0 to 7 of 18 so far.") in out
    assert cli.main(["claims", "--claims", str(tmp_path / "none.yaml")]) == 2


def test_readme_shows_what_the_committed_results_give():
    """README's run and claims tables are what scripts/update_readme.py computes from the
    committed results/*_paper/ files; a run still in progress changes them, and the script
    brings the README up to date."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "update_readme.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def write_folder(results, preset, rows, **changes):
    """A results folder of LeNet with only a summary and params.yaml (what claims read)."""
    folder = results / f"lenet_mnist_{preset}"
    folder.mkdir(parents=True)
    summary(rows).assign(arch="lenet", dataset="mnist").to_csv(folder / "summary.csv",
                                                               index=False)
    (folder / "metrics.csv").write_text(",".join(METRICS_COLUMNS) + "\n")  # not read here
    hp = dataclasses.replace(Hparams.paper("lenet"), preset=preset, **changes)
    (folder / "params.yaml").write_text(yaml.safe_dump({"hparams": hp.to_dict()}))


def test_sensitivity_puts_each_claim_on_both_runs_side_by_side(tmp_path):
    assert claims_report.sensitivity(tmp_path).empty  # no variant run: no table
    write_folder(tmp_path, "paper", DENSE + ROUND7)  # the default normalization: x/255
    assert claims_report.variant_runs(tmp_path) == {}  # the base run alone is no comparison
    standardized = [(s, t, r, pm, it, acc + 0.01) for s, t, r, pm, it, acc in DENSE + ROUND7
                    if s == "winning_ticket"]
    write_folder(tmp_path, "paper_standardize", standardized, normalization="standardize")
    runs = claims_report.variant_runs(tmp_path)
    assert {label: {n: r.hp.normalization for n, r in by.items()} for label, by in runs.items()} \
        == {"paper (x/255)": {"lenet": "scale"},
            "paper_standardize (standardized)": {"lenet": "standardize"}}
    # the labels come from each run's own normalization, whichever preset is the base
    assert list(claims_report.variant_runs(tmp_path, base="paper_standardize",
                                           variants=("paper",))) \
        == ["paper_standardize (standardized)", "paper (x/255)"]
    table = claims_report.sensitivity(tmp_path).set_index("id")
    assert set(table["network"]) == {"LeNet-300-100"}  # only the networks a variant ran
    assert list(table.columns) == ["network", "paper", "paper (x/255)",
                                   "paper_standardize (standardized)"]
    dense = table.loc["dense-accuracy"]
    assert (dense["paper (x/255)"], dense["paper_standardize (standardized)"]) == \
        ("98.10 (98.00 to 98.20) %", "99.10 (99.00 to 99.20) %")
    row = table.loc["lenet-speedup-vs-reinit"]
    assert row["paper (x/255)"] == "2.00 (1.67 to 2.50) x: holds"
    assert row["paper_standardize (standardized)"] == "-: not run"  # no random reinit there
    assert table.loc["lenet-early-stop-21", "paper_standardize (standardized)"] == \
        "2.20 (2.00 to 2.50) x: does not hold"
