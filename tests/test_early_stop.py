"""The early-stopping network (Figure 1) in each checkpoint: the weights at the evaluation of
minimum validation loss, the earliest of equal ones (formats.summarize's rule).

The runs here are two dense LeNets and their round-1 winning tickets on the real MNIST, 60
iterations at a learning rate high enough (1e-2) for the validation loss to rise again before
the end (on standardized inputs: under x/255 it does not rise within 60), evaluated every 10
iterations on all of the validation and test sets, so that `load_and_evaluate`, which reads a
whole split, sees the examples the run measured.
"""
import csv
import dataclasses

import pytest
import torch

from lth_utils.presets import resolve
from lth_utils.errors import LTHError
from lth_utils.experiment import Experiment, plan, run_experiment
from lth_utils.formats import read_torch, save_torch
from lth_utils.store import Store
from lth_utils.evaluation import load_and_evaluate

pytestmark = pytest.mark.usefixtures("torch_single_thread")

HP = dataclasses.replace(resolve("lenet", preset="smoke"), trials=2, rounds=1, iterations=60,
                         eval_every=10, eval_limit=0, rewind_iteration=0, learning_rate=1e-2,
                         strategies=("winning_ticket",), normalization="standardize")
NAME = "lenet_mnist_smoke"
STOP = 45  # where runs below are interrupted, inside round 0


def summary(folder) -> dict:
    with open(folder / "summary.csv") as f:
        return {(r["trial"], r["round"]): r for r in csv.DictReader(f)}


def recorded_test_accuracy(folder) -> dict:
    """(trial, round, iteration) -> recorded test accuracy."""
    with open(folder / "metrics.csv") as f:
        return {(r["trial"], r["round"], int(r["iteration"])): float(r["accuracy"])
                for r in csv.DictReader(f) if r["split"] == "test"}


def checkpoints(folder) -> dict:
    store = Store(folder, "lenet", "mnist")
    return {u: store.read_checkpoint(u, HP.iterations) for u in plan(HP)}


def path_of(folder, unit):
    return Store(folder, "lenet").checkpoint_path(unit, HP.iterations)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    return run_experiment(HP, tmp_path_factory.mktemp("reference"), data_dir, progress=False)


def check_reproduces(folder, data_dir):
    """Each checkpoint's early-stopping network gives, on the test split, exactly the test
    accuracy the run recorded at the early-stopping iteration of summary.csv."""
    rows, recorded = summary(folder), recorded_test_accuracy(folder)
    before_the_end = 0
    for unit, ckpt in checkpoints(folder).items():
        row = rows[(str(unit.trial), str(unit.round))]
        iteration = int(row["early_stop_iteration"])
        assert ckpt["early_stop_iteration"] == iteration
        loss, accuracy = load_and_evaluate(path_of(folder, unit), "test", data_dir,
                                           weights="early_stop")
        assert accuracy == recorded[(str(unit.trial), str(unit.round), iteration)]
        assert accuracy == float(row["early_stop_test_accuracy"])
        val_loss, _ = load_and_evaluate(path_of(folder, unit), "val", data_dir,
                                        weights="early_stop")
        assert val_loss == pytest.approx(float(row["early_stop_val_loss"]), rel=1e-6)
        before_the_end += iteration < HP.iterations
    assert before_the_end >= 1  # else the early-stopping network is the trained one


def test_early_stop_weights_reproduce_the_recorded_test_accuracy(reference, data_dir):
    check_reproduces(reference, data_dir)


@pytest.mark.slow  # over 10 s of training
def test_the_reference_engine_keeps_them_too(tmp_path, data_dir):
    folder = run_experiment(HP, tmp_path, data_dir, progress=False, engine="reference")
    check_reproduces(folder, data_dir)


def stop_inside_round_0(out, data_dir):
    with pytest.raises(KeyboardInterrupt):
        Experiment(HP, out, data_dir).run(progress=False, should_stop=lambda i: i == STOP)
    (state,) = (out / NAME / "checkpoints").glob("*.state.pt")
    return state


@pytest.mark.slow  # over 10 s of training
def test_a_resumed_group_ends_with_the_same_early_stop_weights(reference, tmp_path, data_dir):
    state = stop_inside_round_0(tmp_path, data_dir)
    saved = torch.load(state, weights_only=True)
    assert saved["iteration"] == STOP and len(saved["early_stop"]) == 2
    folder = run_experiment(HP, tmp_path, data_dir, progress=False)
    assert (folder / "summary.csv").read_bytes() == (reference / "summary.csv").read_bytes()
    ours, theirs = checkpoints(folder), checkpoints(reference)
    for unit in plan(HP):
        assert ours[unit]["early_stop_iteration"] == theirs[unit]["early_stop_iteration"]
        for name, tensor in theirs[unit]["early_stop"].items():
            assert torch.equal(ours[unit]["early_stop"][name], tensor), (unit, name)


@pytest.mark.slow  # over 10 s of training
def test_a_group_state_of_format_1_still_resumes(reference, tmp_path, data_dir):
    """A state saved by the code before early-stopping weights were kept resumes to the same
    CSVs; a network whose minimum came before the saved iteration has no early-stopping
    weights (one line when asked for), one whose minimum came later has them."""
    state = stop_inside_round_0(tmp_path, data_dir)
    saved = torch.load(state, weights_only=True)
    del saved["early_stop"]
    save_torch(state, {**saved, "format": "lth_utils.group-state/1"})
    folder = run_experiment(HP, tmp_path, data_dir, progress=False)
    assert (folder / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    theirs, kinds = checkpoints(reference), set()
    for unit, ckpt in checkpoints(folder).items():
        later = unit.round == 1 or theirs[unit]["early_stop_iteration"] > STOP
        kinds.add(later)
        if later:
            assert all(torch.equal(ckpt["early_stop"][name], tensor)
                       for name, tensor in theirs[unit]["early_stop"].items())
        else:
            assert "early_stop" not in ckpt
            with pytest.raises(LTHError, match="holds no early-stopping weights: its group "
                                               "was resumed") as info:
                load_and_evaluate(path_of(folder, unit), "test", data_dir, weights="early_stop")
            assert "\n" not in str(info.value)
    assert kinds == {True, False}


@pytest.mark.slow  # over 10 s of training
def test_checkpoints_of_format_1_are_read_resumed_from_and_pruned(reference, tmp_path, data_dir):
    with pytest.raises(KeyboardInterrupt):  # round 0 finished, round 1 not started
        Experiment(HP, tmp_path, data_dir).run(progress=False, stop_after_groups=1)
    folder = tmp_path / NAME
    for path in (folder / "checkpoints").glob("*_round0_it*.pt"):
        ckpt = read_torch(path)
        old = {k: v for k, v in ckpt.items() if k not in ("early_stop", "early_stop_iteration")}
        save_torch(path, {**old, "format": "lth_utils.checkpoint/1"})
    old_path = path_of(folder, plan(HP)[0])
    assert load_and_evaluate(old_path, "test", data_dir) == \
        load_and_evaluate(path_of(reference, plan(HP)[0]), "test", data_dir)
    with pytest.raises(LTHError, match="written before checkpoints kept them \\(format "
                                       "lth_utils.checkpoint/1\\)"):
        load_and_evaluate(old_path, "test", data_dir, weights="early_stop")
    run_experiment(HP, tmp_path, data_dir, progress=False)  # round 1 prunes the old ones
    assert (folder / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
