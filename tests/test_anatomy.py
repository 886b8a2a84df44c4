"""What a winning ticket looks like (anatomy.py, movement.py): initializations redrawn from the
seeds bit for bit, masks from the committed files, survivors per input pixel, per-layer Pm, and
the movement table (its values and its merge rule: rows are never dropped or recomputed)."""
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lth_utils import anatomy, committed, movement
from lth_utils.presets import resolve
from lth_utils.errors import LTHError
from lth_utils.experiment import run_experiment
from lth_utils.formats import checkpoint
from lth_utils.models import LotteryNet
from lth_utils.store import Store
from lth_utils.strategies import Network, Unit, masked

pytestmark = pytest.mark.usefixtures("torch_single_thread")

STRATEGIES = ("winning_ticket", "random_reinit", "random_sparse", "oneshot", "rewind")
HP = dataclasses.replace(resolve("lenet", preset="smoke"), trials=1, rounds=2, iterations=20,
                         eval_every=10, eval_limit=100, rewind_iteration=0,
                         strategies=STRATEGIES)
UNITS = [Unit("winning_ticket", 0, 0)] + [Unit(s, 0, r) for s in STRATEGIES for r in (1, 2)]


def paper_run() -> committed.Run:
    """LeNet at the paper's protocol, with a folder that holds nothing (no masks)."""
    hp = resolve("lenet", preset="paper")
    folder = Path("/nonexistent/lenet_mnist_paper")
    return committed.Run(folder, hp, Network(hp), Store(folder, "lenet", "mnist"))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, data_dir):
    """A tiny run of every strategy, rounds 0 to 2, with its checkpoints (late resetting to
    iteration 0, which the seeds give back)."""
    return run_experiment(HP, tmp_path_factory.mktemp("anatomy"), data_dir, progress=False)


def test_initializations_and_masks_are_given_back_bit_for_bit(smoke):
    run = committed.open_run(smoke)
    for unit in UNITS:
        ckpt = run.store.read_checkpoint(unit, HP.iterations)
        mask = committed.mask(run, unit)
        assert mask is not None, unit
        for name in run.net.shapes:
            assert torch.equal(mask[name], ckpt["mask"][name]), (unit, name)
        rebuilt = masked(committed.initialization(run, unit), mask)
        assert rebuilt.keys() == ckpt["initial"].keys()
        for key, value in ckpt["initial"].items():
            assert torch.equal(rebuilt[key], value), (unit, key)  # bit for bit


def test_late_resetting_past_iteration_0_needs_the_checkpoint(smoke):
    """Its initialization is the dense run's weights at iteration k: no seed gives it back."""
    hp = dataclasses.replace(HP, rewind_iteration=10)
    run = committed.Run(smoke, hp, Network(hp), Store(smoke, hp.arch, hp.dataset))
    with pytest.raises(LTHError, match=r"lenet_winning_ticket_trial0_round0's checkpoint, "
                                       r"whose 'rewind' entry"):
        committed.initialization(run, Unit("rewind", 0, 1))


def test_layer_pm_follows_the_counts_and_the_committed_masks(smoke):
    run = committed.open_run(smoke)
    table = anatomy.layer_pm(run)
    for r in range(HP.rounds + 1):
        counts = run.net.counts(r)
        rows = table[table["round"] == r].set_index("layer")
        assert rows["remaining"].to_dict() == counts
        assert rows["pm"].iloc[0] == pytest.approx(100 * sum(counts.values()) / 266_200)
    pruned = table[table["round"] > 0]
    assert (pruned["masks"] == 1).all() and pruned["masks_agree"].all()
    assert table[table["round"] == 0]["masks_agree"].isna().all()  # dense: nothing to check


def test_the_output_layer_is_pruned_at_half_the_rate():
    """Section 2's ladder (Pm 51.3% after 3 rounds, 1.9% after 18), the output layer at 10%."""
    run = paper_run()
    table = anatomy.layer_pm(run, rounds=[3, 18]).set_index(["round", "layer"])
    assert table.loc[(3, "1"), "pm"] == pytest.approx(51.3, abs=0.05)
    assert table.loc[(18, "1"), "pm"] == pytest.approx(1.9, abs=0.05)
    assert table.loc[(3, "1"), "layer_pm"] == pytest.approx(51.2, abs=0.01)  # 0.8 ** 3
    assert table.loc[(3, "5"), "layer_pm"] == pytest.approx(72.9, abs=0.01)  # 0.9 ** 3
    assert list(table.loc[3, "rate"]) == [0.2, 0.2, 0.1]


def test_survivors_per_input_pixel_on_a_hand_made_mask():
    run = paper_run()
    mask = {n: torch.zeros(s, dtype=torch.bool) for n, s in run.net.shapes.items()}
    mask["1"][:, 0] = True             # pixel (0, 0): every one of the 300 connections
    mask["1"][:5, 28 * 27 + 27] = True  # pixel (27, 27): 5 of them
    mask["1"][7, 28 * 14 + 3] = True    # pixel (14, 3): one
    counts = anatomy.input_survivors(run, mask)
    assert counts.shape == (28, 28) and counts.sum() == 306
    assert (counts[0, 0], counts[27, 27], counts[14, 3]) == (300, 5, 1)
    border = anatomy.border_table({"hand": counts})["hand"]
    assert border[0] == pytest.approx(305 / (28 * 4 - 4))  # the outermost ring's 108 pixels
    assert border[3] == pytest.approx(1 / ((28 - 6) * 4 - 4)) and border[13] == 0


def test_initial_weight_histograms_have_area_one_and_survivors_are_the_masked_ones(smoke):
    run = committed.open_run(smoke)
    pooled = anatomy.surviving_init(run, [Unit("winning_ticket", 0, 2)])
    counts = run.net.counts(2)
    for name, (every, kept) in pooled.items():
        assert every.size == run.net.sizes[name] and kept.size == counts[name]
    table = anatomy.init_histograms(pooled, bins=40)
    for (layer, which), rows in table.groupby(["layer", "which"]):
        area = ((rows["right"] - rows["left"]) * rows["density"]).sum()
        assert area == pytest.approx(1.0), (layer, which)
    stats = anatomy.init_stats(pooled)
    assert stats.loc["1", "survivors"] == counts["1"]


def test_pick_rounds_names_the_levels_not_committed():
    run = paper_run()
    shown, notes = committed.pick_rounds(run, [0, 1, 2, 3, 4])
    assert shown == {"100.0": 0, "51.3": 3, "41.1": 4}  # Figure 3's levels, then the deepest
    assert notes == ["Pm = 21.1, 7.0, 3.6, 1.9%: no mask of its round in lenet_mnist_paper "
                     "(not trained, or not committed, yet)"]
    shown, notes = committed.pick_rounds(dataclasses.replace(run, hp=dataclasses.replace(
        run.hp, rounds=7)), [0, 7])
    assert shown == {"100.0": 0, "21.1": 7}
    assert notes == ["Pm = 51.3%: no mask of its round in lenet_mnist_paper (not trained, or "
                     "not committed, yet)", "Pm = 7.0, 3.6, 1.9%: beyond this run's 7 rounds"]


def test_movement_of_a_hand_made_checkpoint():
    hp = resolve("lenet", preset="smoke")
    model = LotteryNet("lenet", "mnist")
    initial = {k: torch.ones_like(v) for k, v in model.parameters_state().items()}
    trained = {k: torch.full_like(v, -5.0) for k, v in initial.items()}
    mask = {n: torch.zeros(w.shape, dtype=torch.bool) for n, w in model.weights().items()}
    mask["1"][:, :10] = True                           # 3,000 weights: 1 -> 3 (moved 2, away)
    trained[LotteryNet.weight_key("1")][:, :10] = 3.0
    mask["3"][0, :4] = True                            # 4 weights: 1 -> 1, 1 -> 0.5 x 3
    trained[LotteryNet.weight_key("3")][0, :4] = torch.tensor([1.0, 0.5, 0.5, 0.5])
    ckpt = checkpoint(hp, Unit("winning_ticket", 0, 1), 1.1, mask, initial, trained)
    rows = {r["layer"]: r for r in movement.movement_rows(ckpt)}
    assert rows["1"]["remaining"] == 3000 and rows["1"]["mean_abs_move"] == pytest.approx(2.0)
    assert rows["1"]["rel_l2"] == pytest.approx(2.0) and rows["1"]["moved_away"] == 100.0
    assert rows["1"]["mean_abs_init"] == 1.0
    assert rows["3"]["mean_abs_move"] == pytest.approx(0.375)   # (0 + 3 x 0.5) / 4
    assert rows["3"]["rel_l2"] == pytest.approx(np.sqrt(0.75) / 2)  # ||.5,.5,.5|| / ||1,1,1,1||
    assert rows["3"]["moved_away"] == 0.0
    assert rows["5"]["remaining"] == 0 and np.isnan(rows["5"]["mean_abs_move"])


def test_movement_table_is_merged_never_dropped_nor_recomputed(smoke, tmp_path):
    folder = tmp_path / smoke.name
    folder.mkdir()
    for name in ("params.yaml", "summary.csv", "metrics.csv"):
        (folder / name).write_bytes((smoke / name).read_bytes())
    (folder / "units").symlink_to(smoke / "units")
    (folder / "checkpoints").mkdir()
    paths = {u: Store(smoke, "lenet").checkpoint_path(u, HP.iterations) for u in UNITS}
    for u in UNITS[:4]:
        (folder / "checkpoints" / paths[u].name).symlink_to(paths[u])
    path, added = movement.update_movement(folder)
    assert added == 4
    first = movement.read_movement(folder)
    assert len(first) == 4 * 3 and set(first["round"]) <= {0, 1, 2}
    ckpt = Store(smoke, "lenet").read_checkpoint(UNITS[1], HP.iterations)
    expected = pd.DataFrame(movement.movement_rows(ckpt))
    got = first[(first["strategy"] == UNITS[1].strategy) & (first["round"] == UNITS[1].round)]
    assert np.allclose(got["mean_abs_move"], expected["mean_abs_move"], rtol=1e-5)
    # A kept row is never computed again: mark one, then add the other units' rows.
    marked = first.copy()
    marked.loc[0, "mean_abs_move"] = 123.0
    marked.to_csv(path, index=False, lineterminator="\n")
    for u in UNITS[:4]:
        (folder / "checkpoints" / paths[u].name).unlink()  # gone: their rows must stay
    for u in UNITS[4:]:
        (folder / "checkpoints" / paths[u].name).symlink_to(paths[u])
    _, added = movement.update_movement(folder)
    assert added == len(UNITS) - 4
    merged = movement.read_movement(folder)
    assert len(merged) == len(UNITS) * 3
    assert merged.loc[0, "mean_abs_move"] == 123.0
    before = path.read_bytes()
    assert movement.update_movement(folder)[1] == 0 and path.read_bytes() == before


def test_movement_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert movement.main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "params.yaml").write_text("hparams: {}\n")
    (folder / "movement.csv").write_text("not,a,movement,table\n")
    assert movement.main([str(folder)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
