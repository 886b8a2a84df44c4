"""The experiment driver on the real MNIST with the `smoke` preset, made smaller still.

Every run here is LeNet for 100 iterations with 55,000 of MNIST's 60,000 training images held
out (validation_size=55_000: training, and the final training-set evaluation, use 5,000), and
validation/test evaluated on their first 200 examples: a unit takes a fraction of a second.

Runs are interrupted through the driver's own fault-injection hooks (`Experiment.run`'s
`stop_after_groups` and `should_stop`), and which units an invocation trained is read from the
folder's provenance log (a "group" event per trained group), never by patching the driver.
"""
import csv
import dataclasses
import gzip
import hashlib
import io
import shutil

import pytest
import torch
from filelock import FileLock

from lth_utils.config import STRATEGIES
from lth_utils.errors import LTHError
from lth_utils.budget import TimeBudget
from lth_utils.experiment import Experiment, plan, run_experiment
from lth_utils.evaluation import load_and_evaluate
from lth_utils.frontier import frontier_path
from lth_utils.models import LotteryNet
from lth_utils.presets import resolve
from lth_utils.pruning import mask_counts, percent_remaining, prune_layerwise
from lth_utils.formats import CHECKPOINT_FORMAT, METRICS_COLUMNS, SUMMARY_COLUMNS, read_torch
from lth_utils.store import Status, Store
from lth_utils.strategies import Unit

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def small(**changes):
    hp = dataclasses.replace(resolve("lenet", preset="smoke"), trials=1, rounds=2,
                             iterations=100, eval_every=50, eval_limit=200,
                             validation_size=55_000, rewind_iteration=0,
                             strategies=STRATEGIES)
    return dataclasses.replace(hp, **changes)


HP = small()  # every strategy, one trial, rounds 0..2: 11 units in 3 groups (one per round)
NAME = "lenet_mnist_smoke"


def run(hp, out, data_dir):
    folder = run_experiment(hp, out, data_dir, progress=False)
    assert folder == out / NAME
    return folder


def run_stopped(hp, out, data_dir, groups=2, **kwargs):
    """Run `hp` into `out` and stop it (KeyboardInterrupt, as Ctrl-C would) once `groups`
    groups are finished; with HP's plan, 2 groups are rounds 0 and 1."""
    with pytest.raises(KeyboardInterrupt):
        Experiment(hp, out, data_dir).run(progress=False, stop_after_groups=groups, **kwargs)
    return out / NAME


def read_bytes(folder):
    return {name: (folder / name).read_bytes() for name in ("summary.csv", "metrics.csv")}


def snapshot(folder):
    """Every file under `folder` (relative path -> sha256 of its bytes)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def groups_logged(folder):
    """The groups trained in `folder` so far, as lists of unit names (provenance.jsonl)."""
    return [g["units"] for g in Store(folder).provenance() if g["event"] == "group"]


def names(units):
    return [u.name("lenet") for u in units]


def rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def summary_by_unit(folder):
    return {(r["strategy"], int(r["round"])): r for r in rows(folder / "summary.csv")}


def csv_lines_by_unit(folder, name):
    """The text lines of a CSV, by (strategy, trial, round)."""
    lines = (folder / name).read_text().splitlines()
    out = {}
    for line in lines[1:]:
        _, _, strategy, trial, round_, *_ = line.split(",")
        out.setdefault((strategy, int(trial), int(round_)), []).append(line)
    return out


def checkpoint(folder, hp, strategy, round_, trial=0):
    return Store(folder, hp.arch).read_checkpoint(Unit(strategy, trial, round_), hp.iterations)


def weight_names():
    return LotteryNet("lenet", "mnist").prunable_names


def strip(row):
    return {k: v for k, v in row.items() if k != "strategy"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    """One uninterrupted run of HP, shared read-only by the tests below."""
    return run(HP, tmp_path_factory.mktemp("reference"), data_dir)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, data_dir):
    """HP stopped after round 1 (its first two groups), shared read-only."""
    return run_stopped(HP, tmp_path_factory.mktemp("stopped"), data_dir)


# --- outputs -----------------------------------------------------------------------------------

def test_plan_order_and_size():
    units = plan(HP)
    assert len(units) == 1 + 2 * 5
    assert units[0] == Unit("winning_ticket", 0, 0)
    assert [u.strategy for u in units[1:6]] == ["winning_ticket", "random_reinit",
                                                 "random_sparse", "oneshot", "rewind"]
    assert all(u.round == 1 for u in units[1:6]) and all(u.round == 2 for u in units[6:])
    groups = Experiment(HP).groups(units)
    assert [[u.round for u in g] for g in groups] == [[0], [1] * 5, [2] * 5]


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
        pm = percent_remaining(exp.net.counts(int(s["round"])), exp.net.sizes)
        assert float(s["pm"]) == pytest.approx(pm, rel=1e-12)
    assert (reference / "params.yaml").exists()
    assert exp.status() == Status("complete", 11, 11)


# --- determinism and the strategies ---------------------------------------------------------

@pytest.mark.slow  # over 10 s of training
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
    networks with the same mask, initialization and data may differ by float rounding only
    (the stacked engine has rounded a few elements differently depending on where they sit in
    the stacked tensor); the exact tests below say whether they still do."""
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
    assert same_numbers(strip(summary[("oneshot", 1)]), strip(summary[("winning_ticket", 1)]))
    # round 2 prunes the dense weights straight to 64%, not round 1's: a different network
    assert not same_numbers(strip(summary[("oneshot", 2)]),
                            strip(summary[("winning_ticket", 2)]))
    a, b = checkpoint(reference, HP, "oneshot", 1), checkpoint(reference, HP, "winning_ticket", 1)
    assert all(torch.equal(a["mask"][k], b["mask"][k]) for k in a["mask"])
    assert all(torch.allclose(a["trained"][k], b["trained"][k], atol=1e-5, rtol=0)
               for k in a["trained"])


def test_group_independence_oneshot_round_1_is_exactly_winning_ticket_round_1(reference):
    """Once a unit's numbers do not depend on its group, the same network trained side by
    side in one group gives the same numbers, bit for bit: summary, metrics and weights."""
    summary = summary_by_unit(reference)
    assert strip(summary[("oneshot", 1)]) == strip(summary[("winning_ticket", 1)])
    metrics = rows(reference / "metrics.csv")
    pick = lambda s: [strip(r) for r in metrics  # noqa: E731
                      if r["strategy"] == s and r["round"] == "1"]
    assert pick("oneshot") == pick("winning_ticket")
    a, b = checkpoint(reference, HP, "oneshot", 1), checkpoint(reference, HP, "winning_ticket", 1)
    assert all(torch.equal(a["trained"][k], b["trained"][k]) for k in a["trained"])


def test_rewind_to_iteration_0_is_the_winning_ticket(reference):
    summary = summary_by_unit(reference)
    for round_ in (1, 2):
        assert same_numbers(strip(summary[("rewind", round_)]),
                            strip(summary[("winning_ticket", round_)]))
    metrics = rows(reference / "metrics.csv")
    pick = lambda s: [strip(r) for r in metrics  # noqa: E731
                      if r["strategy"] == s and r["round"] != "0"]
    rewind, ticket = pick("rewind"), pick("winning_ticket")
    assert len(rewind) == len(ticket) and all(map(same_numbers, rewind, ticket))


def test_group_independence_rewind_to_iteration_0_is_exactly_the_winning_ticket(reference):
    metrics = rows(reference / "metrics.csv")
    pick = lambda s: [strip(r) for r in metrics  # noqa: E731
                      if r["strategy"] == s and r["round"] != "0"]
    assert pick("rewind") == pick("winning_ticket")


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


@pytest.mark.slow  # over 10 s of training
def test_reference_engine_matches_the_stacked_one(reference, tmp_path, data_dir):
    """The one-network-at-a-time path gives the same results up to float rounding."""
    folder = run_experiment(HP, tmp_path, data_dir, progress=False, engine="reference")
    stacked, one = summary_by_unit(reference), summary_by_unit(folder)
    assert stacked.keys() == one.keys()
    for key in stacked:
        assert float(stacked[key]["pm"]) == float(one[key]["pm"])
        assert abs(float(stacked[key]["final_test_accuracy"]) -
                   float(one[key]["final_test_accuracy"])) <= 0.02


def test_provenance_log_records_each_group(reference):
    records = Store(reference).provenance()
    assert records[0]["event"] == "start" and records[0]["commit"] and records[0]["machine"]
    groups = [r for r in records if r["event"] == "group"]
    assert [g["units"] for g in groups] == [names(g) for g in Experiment(HP).groups(plan(HP))]
    assert sum(g["seconds"] for g in groups) > 0


# --- resuming ------------------------------------------------------------------------------------

@pytest.mark.slow  # over 10 s of training
def test_interrupted_run_resumes_to_the_same_csvs(reference, tmp_path, data_dir):
    folder = run_stopped(HP, tmp_path, data_dir, groups=2)
    groups = [names(g) for g in Experiment(HP).groups(plan(HP))]
    assert groups_logged(folder) == groups[:2]
    # Rounds 0 and 1 (1 + 5 units) are finished, kept and tabulated.
    assert len(rows(folder / "summary.csv")) == 6
    assert Experiment(HP, tmp_path).status() == Status("in progress", 6, 11)

    run(HP, tmp_path, data_dir)
    assert groups_logged(folder) == groups  # the finished units were not trained again
    assert read_bytes(folder) == read_bytes(reference)


def test_a_unit_killed_after_its_checkpoint_is_trained_again_alone(reference, tmp_path,
                                                                   data_dir):
    """Killed between a checkpoint and its record: that unit is not done, and only it is
    trained again (its group's other units are finished), to the numbers of an uninterrupted
    run. Needs group independence for the CSVs."""
    folder = tmp_path / NAME
    shutil.copytree(reference, folder)
    store, oneshot = Store(folder, "lenet"), Unit("oneshot", 0, 1)  # mid-group in round 1
    store.record_path(oneshot).unlink()
    assert store.checkpoint_path(oneshot, HP.iterations).exists()
    exp = Experiment(HP, tmp_path)
    assert not exp.done(oneshot) and exp.status() == Status("in progress", 10, 11)
    logged = len(groups_logged(folder))
    run(HP, tmp_path, data_dir)
    assert groups_logged(folder)[logged:] == [names([oneshot])]
    assert read_bytes(folder) == read_bytes(reference)


@pytest.mark.slow  # over 10 s of training
def test_group_interrupted_mid_training_resumes_exactly(reference, tmp_path, data_dir):
    """Stopped inside round 1's training (should_stop, as Ctrl-C): the group's state is
    saved at that iteration, and the resumed run goes on from there to the CSVs of an
    uninterrupted one. Needs should_stop wired into training."""
    folder = run_stopped(HP, tmp_path, data_dir, groups=1)  # round 0 finished
    with pytest.raises(KeyboardInterrupt):
        Experiment(HP, tmp_path, data_dir).run(progress=False,
                                               should_stop=lambda iteration: iteration == 36)
    exp = Experiment(HP, tmp_path)
    round_1 = [u for u in plan(HP) if u.round == 1]
    state = exp.store.group_state_path(round_1)
    assert state.exists() and torch.load(state, weights_only=True)["iteration"] == 36
    assert exp.status() == Status("in progress", 1, 11)

    seen = []  # should_stop is asked once per iteration trained: it counts them
    Experiment(HP, tmp_path, data_dir).run(progress=False,
                                           should_stop=lambda iteration: seen.append(iteration))
    segments = [[seen[0]]]
    for a, b in zip(seen, seen[1:]):
        segments[-1].append(b) if b > a else segments.append([b])
    # round 1 from iteration 36, then round 2 from the start
    assert [len(s) for s in segments] == [HP.iterations - 36, HP.iterations]
    assert min(segments[0]) >= 36
    assert not state.exists()
    assert read_bytes(folder) == read_bytes(reference)


def test_rerun_with_other_parameters_is_refused(reference, tmp_path, data_dir):
    folder = tmp_path / NAME
    shutil.copytree(reference, folder)
    before = snapshot(folder)
    assert {"summary.csv", "metrics.csv", "params.yaml"} <= set(before)
    for change in ({"learning_rate": 1e-3}, {"iterations": 120}, {"seed": 1},
                   {"eval_limit": 100}):
        with pytest.raises(LTHError, match=next(iter(change))):
            run(small(**change), tmp_path, data_dir)
    assert snapshot(folder) == before  # nothing trained, nothing written


def test_a_finished_folder_is_left_as_it_is(reference, tmp_path, data_dir):
    """A rerun of a finished folder has nothing to do and writes nothing: every file keeps
    its bytes (the provenance log gets no line) and none appears."""
    folder = tmp_path / NAME
    shutil.copytree(reference, folder)
    before = snapshot(folder)
    run(HP, tmp_path, data_dir)
    Experiment(HP, tmp_path, data_dir).run(progress=False)
    assert snapshot(folder) == before


def test_another_process_in_the_folder_is_refused(reference, tmp_path, data_dir):
    """The lock lies beside the folder: a run that finds it held refuses in one line and
    leaves the folder as it was, or absent."""
    lock = FileLock(tmp_path / f".{NAME}.lock")
    with lock:
        with pytest.raises(LTHError, match="another process") as info:
            run(HP, tmp_path, data_dir)
        assert "\n" not in str(info.value)
        assert not (tmp_path / NAME).exists()

        shutil.copytree(reference, tmp_path / NAME)
        before = snapshot(tmp_path / NAME)
        with pytest.raises(LTHError, match="another process"):
            run(small(strategies=("winning_ticket", "random_reinit"), trials=2), tmp_path,
                data_dir)
        assert snapshot(tmp_path / NAME) == before
    assert len(groups_logged(tmp_path / NAME)) == 3  # nothing was trained


def test_adding_rewind_to_a_finished_folder(tmp_path, data_dir):
    """`rewind` may join a finished folder: the dense run kept its weights at iteration k."""
    first = small(rounds=1, strategies=("winning_ticket",))
    run(first, tmp_path, data_dir)
    run(dataclasses.replace(first, strategies=("winning_ticket", "rewind")), tmp_path, data_dir)
    summary = summary_by_unit(tmp_path / NAME)
    assert ("rewind", 1) in summary
    assert groups_logged(tmp_path / NAME)[-1] == names([Unit("rewind", 0, 1)])


# --- extending a finished run ------------------------------------------------------------------

TICKETS = small(strategies=("winning_ticket",))
EXTENDED = small(strategies=("winning_ticket", "random_reinit"), trials=2)


@pytest.fixture(scope="module")
def extended(tmp_path_factory, data_dir):
    """A 1-trial winning-ticket folder extended to 2 trials, then to random_reinit: for each
    step, (units trained, the folder's files and CSV lines before, and after)."""
    out = tmp_path_factory.mktemp("extended")
    folder = run(TICKETS, out, data_dir)
    steps = []
    for hp in (small(strategies=("winning_ticket",), trials=2), EXTENDED):
        before = (snapshot(folder), csv_lines_by_unit(folder, "summary.csv"),
                  csv_lines_by_unit(folder, "metrics.csv"))
        logged = len(groups_logged(folder))
        run(hp, out, data_dir)
        trained = [u for g in groups_logged(folder)[logged:] for u in g]
        after = (snapshot(folder), csv_lines_by_unit(folder, "summary.csv"),
                 csv_lines_by_unit(folder, "metrics.csv"))
        steps.append((trained, before, after))
    return folder, steps


@pytest.mark.slow  # over 10 s of training
def test_extending_a_finished_run_trains_only_the_new_units(extended):
    folder, (more_trials, more_strategies) = extended
    new_trial = [u for u in plan(small(strategies=("winning_ticket",), trials=2))
                 if u.trial == 1]
    assert sorted(more_trials[0]) == sorted(names(new_trial))
    assert sorted(more_strategies[0]) == sorted(
        names([u for u in plan(EXTENDED) if u.strategy == "random_reinit"]))
    for trained, (files, summary, metrics), (files_after, summary_after, metrics_after) in (
            more_trials, more_strategies):
        # every finished unit's checkpoint and record keeps its bytes
        kept = {p: h for p, h in files.items() if p.startswith(("units/", "checkpoints/"))}
        assert kept and {p: files_after.get(p) for p in kept} == kept
        # and its rows in the CSVs
        assert {k: summary_after[k] for k in summary} == summary
        assert {k: metrics_after[k] for k in metrics} == metrics
        assert len(summary_after) == len(summary) + len(trained)
    assert Experiment(EXTENDED, folder.parent).status() == Status("complete", 10, 10)


@pytest.mark.slow  # over 10 s of training
def test_group_independence_an_extended_run_equals_one_run_of_the_larger_plan(extended, tmp_path,
                                                                             data_dir):
    folder, _ = extended
    assert read_bytes(run(EXTENDED, tmp_path, data_dir)) == read_bytes(folder)


# --- committed folders -------------------------------------------------------------------------

COMMITTED = ("params.yaml", "summary.csv", "metrics.csv.gz", "provenance.jsonl")


def commit_files(folder, into):
    """What a commit of a results folder holds (.gitignore): the CSVs, metrics compressed, and
    the frontier."""
    into.mkdir(parents=True)
    (into / "metrics.csv.gz").write_bytes(gzip.compress((folder / "metrics.csv").read_bytes(),
                                                        mtime=0))
    for name in COMMITTED[:2] + COMMITTED[3:]:
        shutil.copy(folder / name, into)
    if (folder / "frontier").exists():
        shutil.copytree(folder / "frontier", into / "frontier")
    return into


def test_committed_results_are_read_as_they_are(reference, tmp_path):
    """A folder as committed (params.yaml, summary.csv, metrics.csv.gz; no units/ or
    checkpoints/) is complete and read as is."""
    from lth_utils import run_data
    folder = commit_files(reference, tmp_path / NAME)
    assert run_data.complete(folder, HP) and run_data.complete(reference, HP)
    assert not run_data.complete(folder, small(learning_rate=1e-3))  # other science
    committed, original = run_data.load_results(folder, HP), run_data.load_results(reference, HP)
    assert committed.metrics.equals(original.metrics) and committed.summary.equals(
        original.summary)
    assert Store(folder).status(plan(HP)) == Status("complete", 11, 11)


def test_a_committed_partial_folder_without_frontier_is_refused_in_one_line(reference, tmp_path,
                                                                           data_dir):
    """A unit left to train whose starting point is finished but kept nowhere (no checkpoints/
    nor frontier/ in a committed folder) is refused before anything is written."""
    from lth_utils import run_data
    folder = commit_files(reference, tmp_path / NAME)
    lines = (folder / "summary.csv").read_text().splitlines()
    assert lines[-1].startswith("lenet,mnist,rewind,0,2,")
    (folder / "summary.csv").write_text("\n".join(lines[:-1]) + "\n")
    assert not run_data.complete(folder, HP)
    assert Store(folder).status(plan(HP)) == Status("committed", 10, 11)
    before = snapshot(folder)
    with pytest.raises(LTHError, match="lenet_rewind_trial0_round2 starts from "
                                       "lenet_rewind_trial0_round1, which is finished but "
                                       "whose checkpoint .* does not keep") as info:
        run(HP, tmp_path, data_dir)
    assert "\n" not in str(info.value)
    assert snapshot(folder) == before


def test_a_committed_folder_without_frontier_trains_what_needs_no_checkpoint(reference,
                                                                             tmp_path, data_dir):
    """random_sparse starts from no finished unit: added to a committed, complete run of
    winning tickets (no frontier/, no checkpoints/), the folder is restored and only
    random_sparse's units are trained, to the numbers of the reference run."""
    local = run(TICKETS, tmp_path / "local", data_dir)
    folder = commit_files(local, tmp_path / "clone" / NAME)
    assert not (folder / "frontier").exists()
    with_sparse = small(strategies=("winning_ticket", "random_sparse"))
    logged = len(groups_logged(folder))
    run(with_sparse, tmp_path / "clone", data_dir)
    sparse = [u for u in plan(with_sparse) if u.strategy == "random_sparse"]
    assert sorted(u for g in groups_logged(folder)[logged:] for u in g) == sorted(names(sparse))
    assert Experiment(with_sparse, tmp_path / "clone").status() == Status("complete", 5, 5)
    ours, theirs = summary_by_unit(folder), summary_by_unit(reference)
    assert set(ours) == {("winning_ticket", r) for r in range(3)} | {
        ("random_sparse", r) for r in (1, 2)}
    for key in ours:  # (exactly equal once a unit's numbers do not depend on its group)
        assert same_numbers(ours[key], theirs[key]), key


def test_a_committed_partial_run_resumes_from_its_files_alone(reference, stopped, tmp_path,
                                                              data_dir):
    """A run stopped after round 1 and committed (CSVs and frontier/, no checkpoints)
    goes on in a fresh folder to the CSVs of an uninterrupted run: the frontier's checkpoints
    come back bit for bit, and the finished units are not trained again."""
    local = Experiment(HP, stopped.parent)
    assert local.frontier() == [Unit("winning_ticket", 0, 0), Unit("winning_ticket", 0, 1),
                                Unit("rewind", 0, 1)]
    assert sorted((local.dir / "frontier").iterdir()) == sorted(
        frontier_path(local.store, u) for u in local.frontier())
    folder = commit_files(local.dir, tmp_path / "clone" / local.dir.name)
    assert Store(folder).status(plan(HP)) == Status("committed", 6, 11)

    logged = len(groups_logged(folder))
    run(HP, tmp_path / "clone", data_dir)
    assert groups_logged(folder)[logged:] == [names(Experiment(HP).groups(plan(HP))[2])]
    assert read_bytes(folder) == read_bytes(reference)
    clone = Store(folder, "lenet")
    for unit in local.frontier():
        before, after = local.checkpoint(unit), clone.read_checkpoint(unit, HP.iterations)
        # frontier/ keeps what resuming needs: not the early-stopping network
        assert before.keys() - {"early_stop", "early_stop_iteration"} == after.keys()
        for part in ("mask", "initial", "trained") + (("rewind",) if "rewind" in before else ()):
            assert before[part].keys() == after[part].keys()
            for key, tensor in before[part].items():  # bit for bit, the sign of zero too
                same = tensor.view(torch.int32) if tensor.is_floating_point() else tensor
                other = after[part][key]
                assert torch.equal(same, other.view(torch.int32) if other.is_floating_point()
                                   else other), (unit, part, key)
    assert not (folder / "frontier").exists()  # a complete run needs no frontier


def test_an_unreadable_frontier_is_one_line(reference, tmp_path, data_dir):
    folder = commit_files(reference, tmp_path / NAME)
    lines = (folder / "summary.csv").read_text().splitlines()
    (folder / "summary.csv").write_text("\n".join(lines[:-1]) + "\n")  # rewind round 2 left
    (folder / "frontier").mkdir()
    for unit in ("winning_ticket_trial0_round0", "rewind_trial0_round1"):  # what it starts from
        (folder / "frontier" / f"lenet_{unit}.pt").write_bytes(b"not one")
    before = snapshot(folder)
    with pytest.raises(LTHError, match="not a readable frontier file") as info:
        run(HP, tmp_path, data_dir)
    assert "\n" not in str(info.value)
    assert snapshot(folder) == before and not (folder / "units").exists()


def test_a_strategy_whose_starting_points_are_gone_is_refused_up_front(tmp_path, data_dir):
    """Winning tickets committed after round 1 keep only round 1's checkpoint: random reinit
    of round 1 needs round 0's, so adding it is refused before anything trains."""
    local = run_stopped(TICKETS, tmp_path / "local", data_dir, groups=2)
    folder = commit_files(local, tmp_path / "clone" / NAME)
    before = snapshot(folder)
    with_reinit = small(strategies=("winning_ticket", "random_reinit"))
    with pytest.raises(LTHError, match="random_reinit_trial0_round1 starts from "
                                       "lenet_winning_ticket_trial0_round0"):
        run(with_reinit, tmp_path / "clone", data_dir)
    assert snapshot(folder) == before
    logged = len(groups_logged(folder))
    run(TICKETS, tmp_path / "clone", data_dir)  # the winning tickets go on
    assert groups_logged(folder)[logged:] == [names([Unit("winning_ticket", 0, 2)])]


# --- checkpoints ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def full_eval_run(tmp_path_factory, data_dir):
    """A dense 20-iteration run evaluated on all of the validation and test sets."""
    hp = dataclasses.replace(resolve("lenet", preset="smoke"), trials=1, rounds=0,
                             iterations=20, eval_every=20, eval_limit=0, rewind_iteration=0,
                             strategies=("winning_ticket",))
    folder = run(hp, tmp_path_factory.mktemp("full_eval"), data_dir)
    path = Store(folder, hp.arch).checkpoint_path(Unit("winning_ticket", 0, 0), hp.iterations)
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
    assert read_torch(path)["format"] == CHECKPOINT_FORMAT


def test_pruned_masks_are_kept_compactly(reference):
    """masks/ holds, bit-packed, the mask of every pruned network whose strategy prunes by
    trained weights; read back, each equals its checkpoint's, bit for bit."""
    exp = Experiment(HP, reference.parent)
    kept = {p.name for p in (reference / "masks").iterdir()}
    own = [u for u in plan(HP) if u.round and u.strategy in ("winning_ticket", "oneshot",
                                                             "rewind")]
    assert kept == {exp.store.mask_path(u).name for u in own}
    for unit in own:
        mask = exp.store.read_mask(unit, exp.net.shapes)
        want = checkpoint(reference, HP, unit.strategy, unit.round)["mask"]
        assert all(torch.equal(mask[n], want[n]) for n in want), unit
    size = max(exp.store.mask_path(u).stat().st_size for u in own)
    assert size <= sum(exp.net.sizes.values()) / 8 + 1024  # at most one bit a weight
    damaged = exp.store.mask_path(Unit("winning_ticket", 0, 9))
    damaged.write_bytes(b"not a mask")
    try:
        with pytest.raises(LTHError, match="not a readable mask file"):
            exp.store.read_mask(Unit("winning_ticket", 0, 9), exp.net.shapes)
    finally:
        damaged.unlink()


class FirstGroupOnly(TimeBudget):
    """A budget that holds the first group (no estimate yet) and no other."""
    def fits(self, estimate):
        return estimate is None


class SpentInside(TimeBudget):
    """A budget that lets the next group start and is spent at once inside it."""
    def fits(self, estimate):
        return True

    def left(self):
        return 0.0


class FitsNothing(TimeBudget):
    """A budget that no group fits."""
    def fits(self, estimate):
        return False


def test_a_budget_that_fits_no_group_leaves_the_folder_as_it_was(stopped, tmp_path, data_dir):
    """Resumed under a budget too small for the next group, a run trains nothing, so its
    record of what trained it (params.yaml: commit, threads; the provenance log) keeps its
    bytes."""
    folder = tmp_path / NAME
    shutil.copytree(stopped, folder)
    kept = ("params.yaml", "provenance.jsonl", "summary.csv", "metrics.csv")
    before = {name: (folder / name).read_bytes() for name in kept}
    budget = FitsNothing(3600)
    Experiment(HP, tmp_path, data_dir).run(progress=False, budget=budget)
    assert budget.spent.startswith("before round 2")
    assert {name: (folder / name).read_bytes() for name in kept} == before


@pytest.mark.slow  # over 10 s of training
def test_a_time_budget_stops_cleanly_and_the_rerun_ends_as_an_uninterrupted_run(
        reference, tmp_path, data_dir):
    # spent at a group boundary: round 0 trained and saved, round 1 not started
    first = FirstGroupOnly(3600)
    Experiment(HP, tmp_path, data_dir).run(progress=False, budget=first)
    assert first.spent.startswith("before round 1")
    folder = tmp_path / "lenet_mnist_smoke"
    assert [r["round"] for r in rows(folder / "summary.csv")] == ["0"]
    # spent inside a group: its state is saved a margin before the end
    inside = SpentInside(3600)  # stops at the group's first iteration
    Experiment(HP, tmp_path, data_dir).run(progress=False, budget=inside)
    assert inside.spent == "inside round 1 (its state saved)"
    assert list((folder / "checkpoints").glob("*.state.pt"))
    run(HP, tmp_path, data_dir)  # no budget: goes on from the saved state to the end
    assert read_bytes(folder) == read_bytes(reference)
