"""The experiment driver on the real MNIST with the `smoke` preset, made smaller still.

Every run here is LeNet for 100 iterations with 55,000 of MNIST's 60,000 training images held
out (validation_size=55_000: training, and the final training-set evaluation, use 5,000), and
validation/test evaluated on their first 200 examples: a unit takes a fraction of a second.
"""
import csv
import dataclasses
import gzip
import io
import json
import shutil

import pytest
import torch

from lth_utils.config import STRATEGIES, resolve
from lth_utils.errors import LTHError
from lth_utils.experiment import (CHECKPOINT_FORMAT, METRICS_COLUMNS, SUMMARY_COLUMNS,
                                  Experiment, Unit, atomic_path, load_and_evaluate, plan,
                                  read_checkpoint, run_experiment, summarize, write_text)
from lth_utils.models import LotteryNet
from lth_utils.pruning import mask_counts, percent_remaining, prune_layerwise

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def small(**changes):
    hp = dataclasses.replace(resolve("lenet", preset="smoke"), trials=1, rounds=2,
                             iterations=100, eval_every=50, eval_limit=200,
                             validation_size=55_000, rewind_iteration=0,
                             strategies=STRATEGIES)
    return dataclasses.replace(hp, **changes)


HP = small()  # every strategy, one trial, rounds 0..2: 11 units


def run(hp, out, data_dir):
    folder = run_experiment(hp, out, data_dir, progress=False)
    assert folder == out / f"{hp.arch}_{hp.dataset}_{hp.preset}"
    return folder


def read_bytes(folder):
    return {name: (folder / name).read_bytes() for name in ("summary.csv", "metrics.csv")}


def rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def summary_by_unit(folder):
    return {(r["strategy"], int(r["round"])): r for r in rows(folder / "summary.csv")}


def checkpoint(folder, hp, strategy, round_, trial=0):
    exp = Experiment(hp, folder.parent)
    return read_checkpoint(exp.checkpoint_path(Unit(strategy, trial, round_)))


def weight_names():
    return LotteryNet("lenet", "mnist").prunable_names


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    """One uninterrupted run of HP, shared read-only by the tests below."""
    return run(HP, tmp_path_factory.mktemp("reference"), data_dir)


# --- outputs -----------------------------------------------------------------------------------

def test_plan_order_and_size():
    units = plan(HP)
    assert len(units) == 1 + 2 * 5
    assert units[0] == Unit("winning_ticket", 0, 0)
    assert [u.strategy for u in units[1:6]] == ["winning_ticket", "random_reinit",
                                                 "random_sparse", "oneshot", "rewind"]
    assert all(u.round == 1 for u in units[1:6]) and all(u.round == 2 for u in units[6:])


def test_csv_columns_and_splits(reference):
    metrics_text = (reference / "metrics.csv").read_text().splitlines()
    summary_text = (reference / "summary.csv").read_text().splitlines()
    assert metrics_text[0].split(",") == METRICS_COLUMNS
    assert summary_text[0].split(",") == SUMMARY_COLUMNS
    metrics, summary = rows(reference / "metrics.csv"), rows(reference / "summary.csv")
    assert {r["split"] for r in metrics} == {"train", "val", "test"}
    assert len(summary) == len(plan(HP))
    assert [(r["strategy"], r["round"]) for r in summary][:3] == \
        [("winning_ticket", "0"), ("winning_ticket", "1"), ("winning_ticket", "2")]
    for s in summary:
        unit = [r for r in metrics if (r["strategy"], r["trial"], r["round"]) ==
                (s["strategy"], s["trial"], s["round"])]
        evals = sorted((int(r["iteration"]), r["split"]) for r in unit)
        assert evals == sorted([(i, sp) for i in (0, 50, 100) for sp in ("val", "test")]
                               + [(100, "train")])
        train_acc = next(float(r["accuracy"]) for r in unit if r["split"] == "train")
        assert float(s["final_train_accuracy"]) == train_acc
        final_test = next(float(r["accuracy"]) for r in unit
                          if r["split"] == "test" and r["iteration"] == "100")
        assert float(s["final_test_accuracy"]) == final_test
        assert 0.5 < train_acc <= 1.0  # it learned something in 100 iterations
        assert (s["arch"], s["dataset"]) == ("lenet", "mnist")
    exp = Experiment(HP, reference.parent)
    for s in summary:
        pm = percent_remaining(exp.counts(int(s["round"])), exp.sizes)
        assert float(s["pm"]) == pytest.approx(pm, rel=1e-12)
    assert (reference / "params.yaml").exists()


def test_summarize_picks_minimum_validation_loss():
    evals = [(0, "val", 2.0, 0.1), (0, "test", 2.1, 0.11), (50, "val", 0.5, 0.8),
             (50, "test", 0.6, 0.79), (100, "val", 0.7, 0.85), (100, "test", 0.65, 0.84),
             (100, "train", 0.4, 0.9)]
    assert summarize(evals) == [50, 0.5, 0.79, 0.84, 0.9]


# --- determinism and the strategies ---------------------------------------------------------

def test_same_hparams_give_identical_csvs(reference, tmp_path, data_dir):
    again = run(HP, tmp_path, data_dir)
    assert read_bytes(again) == read_bytes(reference)


def test_winning_ticket_resets_to_the_exact_initialization(reference):
    r0 = checkpoint(reference, HP, "winning_ticket", 0)
    r1 = checkpoint(reference, HP, "winning_ticket", 1)
    r2 = checkpoint(reference, HP, "winning_ticket", 2)
    assert r0["format"] == CHECKPOINT_FORMAT and r1["round"] == 1
    assert all(m.all() for m in r0["mask"].values())
    for name in weight_names():
        key = LotteryNet.weight_key(name)
        mask = r1["mask"][name]
        assert torch.equal(r1["initial"][key], r0["initial"][key] * mask)
        bias = f"layers.{name}.bias"
        assert torch.equal(r1["initial"][bias], r0["initial"][bias])
        assert torch.count_nonzero(r0["initial"][bias]) == 0
        # round 1's mask: the largest-magnitude trained weights of round 0, layer by layer
        trained = r0["trained"][key].abs()
        n = trained.numel()
        rate = 0.1 if name == weight_names()[-1] else 0.2
        assert int(mask.sum()) == n - round(rate * n)
        assert trained[mask].min() >= trained[~mask].max()
        # pruned weights stayed exactly zero through training, and never come back
        assert (r1["trained"][key][~mask] == 0.0).all()
        assert not (r2["mask"][name] & ~mask).any()
        assert torch.equal(r2["initial"][key], r0["initial"][key] * r2["mask"][name])
    weights0 = {n: r0["trained"][LotteryNet.weight_key(n)] for n in weight_names()}
    expected = prune_layerwise(weights0, r0["mask"], {n: 0.2 for n in weight_names()}
                               | {weight_names()[-1]: 0.1})
    assert all(torch.equal(expected[n], r1["mask"][n]) for n in weight_names())


def same_numbers(a: dict, b: dict) -> bool:
    """Two CSV rows agree: the same keys and text, numbers to 1e-6 (relative). Two
    networks with the same mask, initialization and data, trained side by side in one group,
    differ by float rounding only: fused Adam rounds a few elements differently depending on
    where they sit in the stacked tensor."""
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        try:
            if float(x) != pytest.approx(float(b[key]), rel=1e-6, abs=1e-9):
                return False
        except ValueError:  # not a number
            if x != b[key]:
                return False
    return True


def test_oneshot_round_1_equals_winning_ticket_round_1(reference):
    summary = summary_by_unit(reference)
    strip = lambda r: {k: v for k, v in r.items() if k != "strategy"}  # noqa: E731
    assert same_numbers(strip(summary[("oneshot", 1)]), strip(summary[("winning_ticket", 1)]))
    # round 2 prunes the dense weights straight to 64%, not round 1's: a different network
    assert not same_numbers(strip(summary[("oneshot", 2)]),
                            strip(summary[("winning_ticket", 2)]))
    a, b = checkpoint(reference, HP, "oneshot", 1), checkpoint(reference, HP, "winning_ticket", 1)
    assert all(torch.equal(a["mask"][k], b["mask"][k]) for k in a["mask"])
    assert all(torch.allclose(a["trained"][k], b["trained"][k], atol=1e-5, rtol=0)
               for k in a["trained"])


def test_rewind_to_iteration_0_is_the_winning_ticket(reference):
    summary = summary_by_unit(reference)
    strip = lambda r: {k: v for k, v in r.items() if k != "strategy"}  # noqa: E731
    for round_ in (1, 2):
        assert same_numbers(strip(summary[("rewind", round_)]),
                            strip(summary[("winning_ticket", round_)]))
    metrics = rows(reference / "metrics.csv")
    pick = lambda s: [{k: v for k, v in r.items() if k != "strategy"}  # noqa: E731
                      for r in metrics if r["strategy"] == s and r["round"] != "0"]
    rewind, ticket = pick("rewind"), pick("winning_ticket")
    assert len(rewind) == len(ticket) and all(map(same_numbers, rewind, ticket))


def test_random_reinit_same_mask_new_init(reference):
    for round_ in (1, 2):
        wt = checkpoint(reference, HP, "winning_ticket", round_)
        rr = checkpoint(reference, HP, "random_reinit", round_)
        for name in weight_names():
            key = LotteryNet.weight_key(name)
            assert torch.equal(rr["mask"][name], wt["mask"][name])
            assert not torch.equal(rr["initial"][key], wt["initial"][key])
            assert (rr["initial"][key][~rr["mask"][name]] == 0).all()


def test_random_sparse_same_counts_other_mask(reference):
    for round_ in (1, 2):
        wt = checkpoint(reference, HP, "winning_ticket", round_)
        rs = checkpoint(reference, HP, "random_sparse", round_)
        assert mask_counts(rs["mask"]) == mask_counts(wt["mask"])
        for name in weight_names():
            assert not torch.equal(rs["mask"][name], wt["mask"][name])
            key = LotteryNet.weight_key(name)
            assert not torch.equal(rs["initial"][key], wt["initial"][key])
        assert rs["pm"] == wt["pm"]


def test_rewind_to_a_later_iteration(tmp_path, data_dir, reference):
    hp = small(rounds=1, strategies=("rewind",), rewind_iteration=50)
    folder = run(hp, tmp_path, data_dir)
    dense = checkpoint(folder, hp, "winning_ticket", 0)
    rewound = checkpoint(folder, hp, "rewind", 1)
    for name in weight_names():
        key = LotteryNet.weight_key(name)
        assert not torch.equal(dense["rewind"][key], dense["initial"][key])
        assert not torch.equal(dense["rewind"][key], dense["trained"][key])
        assert torch.equal(rewound["initial"][key], dense["rewind"][key] * rewound["mask"][name])
        # the dense run does not depend on when its snapshot is taken
        assert torch.equal(dense["trained"][key],
                           checkpoint(reference, HP, "winning_ticket", 0)["trained"][key])
    evals = [r for r in rows(folder / "metrics.csv") if r["strategy"] == "rewind"]
    assert min(int(r["iteration"]) for r in evals) == 50


# --- resuming ------------------------------------------------------------------------------------

def test_interrupted_run_resumes_to_the_same_csvs(reference, tmp_path, data_dir, monkeypatch):
    original = Experiment.run_group
    first, second = [], []

    def interrupt_on_3rd(self, units, progress=None):
        if len(first) == 2:
            raise KeyboardInterrupt
        first.append(units)
        return original(self, units, progress)

    monkeypatch.setattr(Experiment, "run_group", interrupt_on_3rd)
    with pytest.raises(KeyboardInterrupt):
        run(HP, tmp_path, data_dir)
    folder = tmp_path / "lenet_mnist_smoke"
    # Rounds 0 and 1 (1 + 5 units) are finished, kept and tabulated.
    assert len(rows(folder / "summary.csv")) == 6

    def counting(self, units, progress=None):
        second.append(units)
        return original(self, units, progress)

    monkeypatch.setattr(Experiment, "run_group", counting)
    run(HP, tmp_path, data_dir)
    groups = Experiment(HP, tmp_path).groups()
    assert first == groups[:2]
    assert second == groups[2:]  # the finished units were not trained again
    assert read_bytes(folder) == read_bytes(reference)

    second.clear()
    run(HP, tmp_path, data_dir)  # a finished folder: nothing to do, nothing changes
    assert second == []
    assert read_bytes(folder) == read_bytes(reference)


def test_unit_interrupted_after_its_checkpoint_is_redone(reference, tmp_path, data_dir,
                                                         monkeypatch):
    """Killed between a checkpoint and its result file: that unit is not done, and its group
    (trained together, so their numbers stay those of an uninterrupted run) runs again."""
    import lth_utils.experiment as experiment
    results = []

    def write_then_die(path, text):
        if path.parent.name == "units":
            if len(results) == 4:
                raise KeyboardInterrupt
            results.append(path.name)
        return write_text(path, text)

    monkeypatch.setattr(experiment, "write_text", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(HP, tmp_path, data_dir)
    monkeypatch.setattr(experiment, "write_text", write_text)
    exp = Experiment(HP, tmp_path)
    fifth = plan(HP)[4]
    assert exp.checkpoint_path(fifth).exists() and not exp.done(fifth)
    ran = []
    original = Experiment.run_group
    monkeypatch.setattr(Experiment, "run_group",
                        lambda self, units, progress=None: ran.append(units) or
                        original(self, units, progress))
    run(HP, tmp_path, data_dir)
    assert ran == exp.groups()[1:]
    assert read_bytes(tmp_path / "lenet_mnist_smoke") == read_bytes(reference)


def test_reference_engine_matches_the_stacked_one(reference, tmp_path, data_dir):
    """The one-network-at-a-time path gives the same results up to float rounding."""
    folder = run_experiment(HP, tmp_path, data_dir, progress=False, engine="reference")
    stacked, one = summary_by_unit(reference), summary_by_unit(folder)
    assert stacked.keys() == one.keys()
    for key in stacked:
        assert float(stacked[key]["pm"]) == float(one[key]["pm"])
        assert abs(float(stacked[key]["final_test_accuracy"]) -
                   float(one[key]["final_test_accuracy"])) <= 0.02


def test_rerun_with_other_parameters_is_refused(reference, tmp_path, data_dir, monkeypatch):
    folder = tmp_path / reference.name
    shutil.copytree(reference, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    trained = []
    monkeypatch.setattr(Experiment, "run_group", lambda self, units, progress=None:
                        trained.append(units))
    for change in ({"learning_rate": 1e-3}, {"iterations": 120}, {"seed": 1},
                   {"eval_limit": 100}):
        with pytest.raises(LTHError, match=next(iter(change))):
            run(small(**change), tmp_path, data_dir)
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert after == before
    assert {"summary.csv", "metrics.csv", "params.yaml"} <= set(after)
    assert trained == []


def test_committed_results_are_read_as_they_are(reference, tmp_path, data_dir):
    """A folder as committed (params.yaml, summary.csv, metrics.csv.gz; no units/ or
    checkpoints/) is complete and read as is; a partial one without frontier/ is refused."""
    from lth_utils import analysis
    folder = tmp_path / reference.name
    folder.mkdir()
    for name in ("params.yaml", "summary.csv"):
        shutil.copy(reference / name, folder)
    (folder / "metrics.csv.gz").write_bytes(gzip.compress((reference / "metrics.csv")
                                                          .read_bytes()))
    assert analysis.complete(folder, HP) and analysis.complete(reference, HP)
    assert not analysis.complete(folder, small(learning_rate=1e-3))  # other science
    committed, original = analysis.load_results(folder, HP), analysis.load_results(reference, HP)
    assert committed.metrics.equals(original.metrics) and committed.summary.equals(
        original.summary)

    lines = (folder / "summary.csv").read_text().splitlines()
    (folder / "summary.csv").write_text("\n".join(lines[:-1]) + "\n")
    assert not analysis.complete(folder, HP)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(LTHError, match="without their training state"):
        run(HP, tmp_path, data_dir)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


COMMITTED = ("params.yaml", "summary.csv", "metrics.csv.gz", "provenance.jsonl")


def commit_files(folder, into):
    """What a commit of a results folder holds (.gitignore): the CSVs, metrics compressed, and
    the frontier."""
    into.mkdir(parents=True)
    (folder / "metrics.csv.gz").write_bytes(gzip.compress((folder / "metrics.csv").read_bytes()))
    for name in COMMITTED:
        shutil.copy(folder / name, into)
    if (folder / "frontier").exists():
        shutil.copytree(folder / "frontier", into / "frontier")


def run_until_round_1(hp, out, data_dir, monkeypatch):
    """Run `hp` into `out` and stop it (as Ctrl-C would) once round 1 is finished."""
    original = Experiment.run_group
    first = Experiment(hp, out).groups()[:2]

    def stop_after_round_1(self, units, progress=None):
        if units not in first:
            raise KeyboardInterrupt
        original(self, units, progress)

    with monkeypatch.context() as m:
        m.setattr(Experiment, "run_group", stop_after_round_1)
        with pytest.raises(KeyboardInterrupt):
            run(hp, out, data_dir)


def test_a_committed_partial_run_resumes_from_its_files_alone(reference, tmp_path, data_dir,
                                                              monkeypatch):
    """A run stopped after round 1 and committed (CSVs and frontier/, no checkpoints)
    goes on in a fresh folder to the CSVs of an uninterrupted run: the frontier's checkpoints
    come back bit for bit, and the finished units are not trained again."""
    original = Experiment.run_group
    run_until_round_1(HP, tmp_path / "local", data_dir, monkeypatch)
    local = Experiment(HP, tmp_path / "local")
    assert local.frontier() == [Unit("winning_ticket", 0, 0), Unit("winning_ticket", 0, 1),
                                Unit("rewind", 0, 1)]
    assert sorted(local.frontier_dir.iterdir()) == sorted(map(local.frontier_path,
                                                              local.frontier()))
    commit_files(local.dir, tmp_path / "clone" / local.dir.name)

    ran = []
    monkeypatch.setattr(Experiment, "run_group", lambda self, units, progress=None:
                        ran.append(units) or original(self, units, progress))
    folder = run(HP, tmp_path / "clone", data_dir)
    assert ran == Experiment(HP, tmp_path).groups()[2:]
    assert read_bytes(folder) == read_bytes(reference)
    clone = Experiment(HP, tmp_path / "clone")
    for unit in local.frontier():
        before, after = local.state(unit), read_checkpoint(clone.checkpoint_path(unit))
        assert before.keys() == after.keys()
        for part in ("mask", "initial", "trained") + (("rewind",) if "rewind" in before else ()):
            assert before[part].keys() == after[part].keys()
            for key, tensor in before[part].items():  # bit for bit, the sign of zero too
                same = tensor.view(torch.int32) if tensor.is_floating_point() else tensor
                other = after[part][key]
                assert torch.equal(same, other.view(torch.int32) if other.is_floating_point()
                                   else other), (unit, part, key)
    assert not clone.frontier_dir.exists()  # a complete run needs no frontier


def test_an_unreadable_frontier_is_one_line(reference, tmp_path, data_dir):
    folder = tmp_path / reference.name
    commit_files(reference, folder)
    lines = (folder / "summary.csv").read_text().splitlines()
    (folder / "summary.csv").write_text("\n".join(lines[:-1]) + "\n")
    (folder / "frontier").mkdir()
    (folder / "frontier" / "lenet_winning_ticket_trial0_round0.pt").write_bytes(b"not one")
    with pytest.raises(LTHError, match="not a readable frontier file"):
        run(HP, tmp_path, data_dir)
    assert not (folder / "units").exists()


def test_provenance_log_records_each_group(reference):
    records = [json.loads(line) for line in
               (reference / "provenance.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "start" and records[0]["commit"] and records[0]["machine"]
    groups = [r for r in records if r["event"] == "group"]
    units = [u for g in groups for u in g["units"]]
    assert sorted(units) == sorted(u.name("lenet") for u in plan(HP))
    assert sum(g["seconds"] for g in groups) > 0


def test_adding_rewind_to_a_finished_folder(tmp_path, data_dir):
    """`rewind` may join a finished folder: the dense run kept its weights at iteration k."""
    first = small(rounds=1, strategies=("winning_ticket",))
    run(first, tmp_path, data_dir)
    run(dataclasses.replace(first, strategies=("winning_ticket", "rewind")), tmp_path, data_dir)
    summary = summary_by_unit(tmp_path / "lenet_mnist_smoke")
    assert ("rewind", 1) in summary


# --- checkpoints ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def full_eval_run(tmp_path_factory, data_dir):
    """A dense 20-iteration run evaluated on all of the validation and test sets."""
    hp = dataclasses.replace(resolve("lenet", preset="smoke"), trials=1, rounds=0,
                             iterations=20, eval_every=20, eval_limit=0, rewind_iteration=0,
                             strategies=("winning_ticket",))
    folder = run(hp, tmp_path_factory.mktemp("full_eval"), data_dir)
    path = Experiment(hp, folder.parent).checkpoint_path(Unit("winning_ticket", 0, 0))
    evals = {(int(r["iteration"]), r["split"]): (float(r["loss"]), float(r["accuracy"]))
             for r in rows(folder / "metrics.csv")}
    return path, evals


@pytest.mark.parametrize("split, weights, iteration", [
    ("test", "trained", 20), ("val", "trained", 20), ("train", "trained", 20),
    ("test", "initial", 0)])
def test_load_and_evaluate_reproduces_recorded_numbers(full_eval_run, data_dir, split, weights,
                                                       iteration):
    path, evals = full_eval_run
    loss, accuracy = load_and_evaluate(path, split, data_dir, weights=weights)
    want_loss, want_accuracy = evals[(iteration, split)]
    assert accuracy == want_accuracy
    assert loss == pytest.approx(want_loss, rel=1e-6)  # the engine's kernels vs one network's
    if weights == "trained":
        assert accuracy > 0.5
    else:
        assert accuracy < 0.5  # an untrained network is not the trained one


def test_load_and_evaluate_rejects_bad_arguments(full_eval_run, data_dir):
    path, _ = full_eval_run
    with pytest.raises(LTHError, match="weights"):
        load_and_evaluate(path, "test", data_dir, weights="final")
    with pytest.raises(LTHError, match="split"):
        load_and_evaluate(path, "dev", data_dir)


def test_unreadable_checkpoints(full_eval_run, tmp_path, data_dir):
    path, _ = full_eval_run
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, foreign)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint\n")
    cases = [(truncated, "not a readable checkpoint"), (foreign, "not an lth_utils checkpoint"),
             (tensor, "not an lth_utils checkpoint"), (text, "not a readable checkpoint"),
             (tmp_path / "missing.pt", "no checkpoint"), (tmp_path, "no checkpoint")]
    for bad, message in cases:
        with pytest.raises(LTHError, match=message) as info:
            load_and_evaluate(bad, "test", data_dir)
        assert "\n" not in str(info.value)
    assert read_checkpoint(path)["format"] == CHECKPOINT_FORMAT


# --- atomic files ------------------------------------------------------------------------------

def test_atomic_path_leaves_nothing_when_the_block_raises(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp.parent == target.parent and tmp != target
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_path_keeps_the_old_file_on_failure_and_replaces_on_success(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_group_interrupted_mid_training_resumes_exactly(reference, tmp_path, data_dir,
                                                       monkeypatch):
    """A stop inside a round's batched training (`should_stop`, as Ctrl-C): its state is saved
    at that iteration boundary, and the resumed run ends with the CSVs of an uninterrupted
    one."""
    import lth_utils.experiment as experiment
    original = experiment.train

    def train_asking(asked, stop_at=None):
        def wrapped(net, splits, **kwargs):
            def should_stop(i):
                asked.append(net.k)
                return net.k == 5 and i == stop_at
            return original(net, splits, should_stop=should_stop, **kwargs)
        return wrapped

    monkeypatch.setattr(experiment, "train", train_asking([], stop_at=36))
    with pytest.raises(KeyboardInterrupt):
        run(HP, tmp_path, data_dir)
    exp = Experiment(HP, tmp_path)
    state = exp.group_state_path(exp.groups()[1])
    assert state.exists() and torch.load(state, weights_only=True)["iteration"] == 36
    resumed = []
    monkeypatch.setattr(experiment, "train", train_asking(resumed))
    run(HP, tmp_path, data_dir)
    assert resumed.count(5) == 2 * HP.iterations - 36  # round 1 from iteration 36, round 2
    assert not state.exists()
    assert read_bytes(tmp_path / "lenet_mnist_smoke") == read_bytes(reference)


def test_a_strategy_whose_starting_points_are_gone_is_refused_up_front(tmp_path, data_dir,
                                                                       monkeypatch):
    """Winning tickets committed after round 1 keep only round 1's checkpoint: random reinit
    of round 1 needs round 0's, so adding it is refused before anything trains."""
    tickets = small(strategies=("winning_ticket",))
    run_until_round_1(tickets, tmp_path / "local", data_dir, monkeypatch)
    folder = tmp_path / "clone" / "lenet_mnist_smoke"
    commit_files(tmp_path / "local" / "lenet_mnist_smoke", folder)
    trained = []
    monkeypatch.setattr(Experiment, "run_group", lambda self, units, progress=None:
                        trained.append(units))
    with_reinit = small(strategies=("winning_ticket", "random_reinit"))
    with pytest.raises(LTHError, match="random_reinit_trial0_round1 starts from "
                                       "lenet_winning_ticket_trial0_round0"):
        run(with_reinit, tmp_path / "clone", data_dir)
    assert trained == []
    run(tickets, tmp_path / "clone", data_dir)  # the winning tickets go on
    assert [u[0].round for u in trained] == [2]
