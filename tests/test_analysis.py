"""lth_utils.run_data, lth_utils.analysis, lth_utils.figure_style and lth_utils.plotting on
small made-up results tables (no training)."""
import math

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from lth_utils import analysis, figure_style, plotting, run_data  # noqa: E402
from lth_utils.presets import resolve  # noqa: E402

# LeNet's Pm after rounds 0-18 (20% of the hidden layers, 10% of the output layer per round).
LENET_PMS = {0: 100.0, 1: 80.04, 2: 64.06, 3: 51.29, 7: 21.08, 12: 6.96, 15: 3.59, 18: 1.87}


def summary_rows():
    """Two trials, rounds 0-2, winning ticket and random reinit (reinit has no round 0)."""
    rows = []
    for trial in range(2):
        for strategy in ("winning_ticket", "random_reinit"):
            for rnd, pm in [(0, 100.0), (1, 80.0), (2, 64.1)]:
                if strategy != "winning_ticket" and rnd == 0:
                    continue
                rows.append({"arch": "lenet", "dataset": "mnist", "strategy": strategy,
                             "trial": trial, "round": rnd, "pm": pm,
                             "early_stop_iteration": 100 * (rnd + 1) + 50 * trial,
                             "early_stop_val_loss": 0.1, "early_stop_test_accuracy": 0.9 + trial / 100,
                             "final_test_accuracy": 0.9, "final_train_accuracy": 0.95})
    return pd.DataFrame(rows)


def test_match_pm_levels_finds_the_papers_levels_and_names_the_missing():
    found, missing = analysis.match_pm_levels(LENET_PMS)
    assert found == {100.0: 0, 51.3: 3, 21.1: 7, 7.0: 12, 3.6: 15, 1.9: 18}
    assert missing == []
    found, missing = analysis.match_pm_levels({0: 100.0, 1: 80.0, 2: 64.1})
    assert found == {100.0: 0}
    assert missing == [51.3, 21.1, 7.0, 3.6, 1.9]
    # nearest, never interpolated: 45% is not 51.3%
    assert analysis.match_pm_levels({0: 100.0, 4: 45.0}, [51.3])[1] == [51.3]
    note = analysis.missing_note([7.0, 3.6], {0: 100.0, 3: 51.3})
    assert "Pm = 7.0, 3.6%" in note and "100.0, 51.3%" in note


def test_dense_rows_are_every_strategys_first_point_and_aggregates_span_trials():
    df = run_data.with_dense(summary_rows(), ["winning_ticket", "random_reinit"])
    reinit = df[df["strategy"] == "random_reinit"]
    assert sorted(reinit["round"].unique()) == [0, 1, 2]
    agg = analysis.aggregate(reinit, "early_stop_iteration")
    assert list(agg["pm"]) == [100.0, 80.0, 64.1]  # largest Pm first, as the axis reads
    first = agg.iloc[0]
    assert (first["mean"], first["min"], first["max"], first["n"]) == (125, 100, 150, 2)


def test_key_numbers_and_verdict_come_from_the_numbers(tmp_path):
    hp = resolve("lenet", None, "smoke")
    summary = run_data.with_dense(summary_rows(), ["winning_ticket", "random_reinit"])
    results = run_data.Results(hp, tmp_path, summary, pd.DataFrame())
    table = analysis.key_numbers(results)
    assert list(table["Pm (%)"]) == [100.0, 80.0, 64.1]
    assert list(table["ticket: early-stop it."]) == [125, 225, 325]
    assert table["speed-up vs. dense"].iloc[-1] == pytest.approx(125 / 325, abs=0.01)
    verdict = analysis.ticket_verdict(results)
    assert "Pm = 64.1%" in verdict and "325 vs 325" in verdict and "not sooner" in verdict
    # a control behind the winning tickets is compared at the last round both have reached
    behind = summary[~((summary["strategy"] == "random_reinit") & (summary["round"] == 2))]
    verdict = analysis.ticket_verdict(run_data.Results(hp, tmp_path, behind, pd.DataFrame()))
    assert "Pm = 80.0%" in verdict and "vs" in verdict
    alone = summary[summary["strategy"] == "winning_ticket"]
    verdict = analysis.ticket_verdict(run_data.Results(hp, tmp_path, alone, pd.DataFrame()))
    assert "no random reinit runs to compare with" in verdict


def test_pm_axis_is_log_reversed_with_readable_ticks():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    figure_style.pm_axis(ax, [100.0, 80.0, 82.5, 64.1, 51.3, 41.0, 32.8, 26.2, 21.1])
    left, right = ax.get_xlim()
    assert ax.get_xscale() == "log" and left > 100 > 21.1 > right
    ticks = list(ax.get_xticks())
    assert ticks[0] == 100.0 and ticks[-1] == 21.1 and len(ticks) <= 8
    assert all(math.log(a / b) > 0.1 for a, b in zip(ticks, ticks[1:]))  # labels apart
    plt.close(fig)


def test_save_figure_writes_png_and_svg(tmp_path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    assert figure_style.save_figure(fig, "example", tmp_path / "figs", caption="x") is None
    png, svg = figure_style.figure_paths("example", tmp_path / "figs")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.read_text().lstrip().startswith("<?xml")
    assert figure_style.iterations_label(50_000) == "50K"
    assert figure_style.iterations_label(300) == "300"


def results_of(summary, metrics=None, preset="smoke", arch="lenet"):
    hp = resolve(arch, None, preset)
    strategies = ["winning_ticket", "random_reinit"]
    metrics = pd.DataFrame() if metrics is None else run_data.with_dense(metrics, strategies)
    return run_data.Results(hp, "unused", run_data.with_dense(summary, strategies), metrics)


def test_a_strategy_with_only_the_shared_dense_network_is_not_one_of_the_results():
    tickets = summary_rows()[lambda df: df["strategy"] == "winning_ticket"]
    assert results_of(tickets).strategies == ["winning_ticket"]  # reinit: copied round 0 only
    assert results_of(summary_rows()).strategies == ["winning_ticket", "random_reinit"]
    table = analysis.key_numbers(results_of(tickets))
    assert not any("reinit" in c for c in table.columns)
    assert set(analysis.pm_table(results_of(tickets)).index.get_level_values(0)) == {
        "Winning Ticket (Iterative)"}


def test_key_numbers_mark_a_missing_value_one_way():
    partial = summary_rows()[lambda df: ~((df["strategy"] == "random_reinit") & (df["round"] == 2))]
    table = analysis.key_numbers(results_of(partial))
    assert list(table.loc[2, ["reinit: early-stop it.", "reinit: test acc. (%)"]]) == [
        analysis.MISSING] * 2
    assert table.loc[1, "reinit: early-stop it."] == 225
    shown = table.to_string() + table.to_html()
    assert "NaN" not in shown and "<NA>" not in shown and "nan" not in shown


def test_titles_and_legends_name_only_the_strategies_drawn_with_trials_and_preset():
    tickets = results_of(summary_rows()[lambda df: df["strategy"] == "winning_ticket"],
                         arch="conv2")
    fig = plotting.arch_figure([tickets], ["early_stop_iteration"])
    title = fig._suptitle.get_text().replace("\n", " ")
    # coloured by network, so the title names line styles only
    assert title == "Conv-2 on CIFAR-10: winning ticket (solid), mean of 2 trials, error bars " \
                    "min-max; preset smoke"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Conv-2"]
    both = results_of(summary_rows())
    fig = plotting.arch_figure([both, both], ["early_stop_iteration"],
                               series=[("standardized", "#1f77b4"), ("x/255", "#ff7f0e")])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "standardized", "standardized (reinit)", "x/255", "x/255 (reinit)"]
    assert [line.get_color() for line in fig.axes[0].get_lines()[::3]] == [
        "#1f77b4", "#1f77b4", "#ff7f0e", "#ff7f0e"]  # each errorbar: line, two caps
    assert fig._suptitle.get_text().startswith("LeNet-300-100 on MNIST: winning ticket")
    both = results_of(summary_rows())
    assert (figure_style.strategy_phrase([both])
            == "winning ticket (blue solid) vs. reinit (red dashed)")
    one = results_of(summary_rows()[lambda df: df["trial"] == 0])
    assert figure_style.figure_title([one]) == "LeNet-300-100 on MNIST: 1 trial; preset smoke"
    import matplotlib.pyplot as plt
    plt.close("all")


def test_figure_3_legends_lie_under_their_panels():
    """Whatever the curves fill, a legend never covers the plotting area."""
    rows = [{"arch": "lenet", "dataset": "mnist", "strategy": "winning_ticket", "trial": t,
             "round": r, "pm": pm, "iteration": it, "split": "test", "loss": 0.1,
             "accuracy": 0.9 + 0.0001 * it + 0.01 * r}
            for t in range(2) for r, pm in [(0, 100.0), (3, 51.29)] for it in range(0, 1100, 100)]
    r = results_of(summary_rows(), pd.DataFrame(rows))
    fig, missing = plotting.curves_figure(r, [dict(levels=[100.0, 51.3]),
                                              dict(levels=[100.0, 21.1])])
    assert missing == {0: [], 1: [21.1]}
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert legend.y1 < ax.get_window_extent(renderer).y0  # below the axes
        assert legend.y1 < ax.xaxis.label.get_window_extent(renderer).y0  # and its label
    import matplotlib.pyplot as plt
    plt.close(fig)
