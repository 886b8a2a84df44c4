"""The results store (store.py) without training: atomic writes, the summary of a unit's
evaluations, and how far a folder is (`Store.status`, `run_data.run_status`), on folders
written through the store's own functions."""
import dataclasses
import gzip
import shutil

import pytest

from lth_utils.config import STRATEGIES
from lth_utils.experiment import plan
from lth_utils.presets import resolve
from lth_utils.formats import atomic_write, summarize
from lth_utils.store import Status, Store
from lth_utils.strategies import Unit

HP = dataclasses.replace(resolve("lenet", preset="smoke"), trials=1, rounds=2,
                         strategies=STRATEGIES)  # 11 units
EVALS = [(0, "val", 2.0, 0.1), (0, "test", 2.1, 0.11), (50, "val", 0.5, 0.8),
         (50, "test", 0.6, 0.79), (100, "val", 0.7, 0.85), (100, "test", 0.65, 0.84),
         (100, "train", 0.4, 0.9)]


# --- atomic files ------------------------------------------------------------------------------

def test_atomic_write_leaves_nothing_when_the_writer_raises(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    seen = []

    def half(tmp):
        tmp.write_text("half")
        seen.append(tmp)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(target, half)
    assert seen[0].parent == target.parent and seen[0] != target
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_keeps_the_old_file_on_failure_and_replaces_on_success(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def interrupted(tmp):
        tmp.write_text("new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "old"
    atomic_write(target, "new")
    assert target.read_text() == "new"
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
    assert target.stat().st_mode & 0o777 == 0o644  # readable like any file, not mkstemp's 0600


def test_summarize_picks_minimum_validation_loss():
    assert summarize(EVALS) == [50, 0.5, 0.79, 0.84, 0.9]
    tie = [(0, "val", 0.5, 0.1), (0, "test", 0.5, 0.2), (50, "val", 0.5, 0.3),
           (50, "test", 0.5, 0.4), (50, "train", 0.5, 0.5)]
    assert summarize(tie)[0] == 0  # ties go to the earliest iteration


# --- how far a folder is -------------------------------------------------------------------

def fill(store, units):
    """`units` finished in `store`, as a run writes them: params, records, CSVs."""
    store.write_params(HP, {})
    for u in units:
        store.write_record(u, 100.0 if u.round == 0 else 80.0, EVALS)
    store.write_csvs(HP)


def commit(store, into):
    """The folder as committed: params.yaml, summary.csv and metrics.csv.gz."""
    into.mkdir(parents=True)
    for name in ("params.yaml", "summary.csv"):
        shutil.copy(store.dir / name, into)
    (into / "metrics.csv.gz").write_bytes(gzip.compress((store.dir / "metrics.csv").read_bytes()))
    return Store(into, "lenet")


def test_status_of_fresh_in_progress_committed_and_complete_folders(tmp_path):
    units = plan(HP)
    store = Store(tmp_path / "lenet_mnist_smoke", "lenet")
    assert store.status(units) == Status("fresh", 0, 11)  # no folder at all
    store.dir.mkdir()
    assert store.status(units) == Status("fresh", 0, 11)  # an empty one

    fill(store, units[:6])  # rounds 0 and 1
    assert store.in_progress and not store.committed
    assert store.finished() == set(units[:6])
    assert store.status(units) == Status("in progress", 6, 11)
    committed = commit(store, tmp_path / "clone" / store.dir.name)
    assert committed.committed and not committed.in_progress
    assert committed.finished() == set(units[:6])
    assert committed.status(units) == Status("committed", 6, 11)

    fill(store, units)
    assert store.status(units) == Status("complete", 11, 11)
    assert store.status(units[:3]) == Status("complete", 3, 3)
    done = commit(store, tmp_path / "done" / store.dir.name)
    assert done.status(units) == Status("complete", 11, 11)  # committed and complete

    # units outside the plan (another trial) count for nothing
    store.write_record(Unit("winning_ticket", 1, 0), 100.0, EVALS)
    assert store.status(units) == Status("complete", 11, 11)


def test_a_record_without_csvs_yet_counts(tmp_path):
    """A unit is finished once its record exists, even before the CSVs are rewritten."""
    store = Store(tmp_path / "f", "lenet")
    fill(store, plan(HP)[:1])
    store.write_record(plan(HP)[1], 80.0, EVALS)
    assert store.status(plan(HP)) == Status("in progress", 2, 11)
    assert len(store.tables.read_metrics()) == 1 and len(store.records()) == 2


def test_run_status_counts_the_units_of_the_strategies_asked_for(tmp_path):
    from lth_utils import run_data
    store = Store(tmp_path / "lenet_mnist_smoke", "lenet")
    units = plan(HP)
    fill(store, units[:6])
    assert run_data.run_status(store.dir, HP) == Status("in progress", 6, 11)
    # the dense network always counts: 1 + 2 rounds of random_sparse, of which round 1 is done
    assert run_data.run_status(store.dir, HP, ["random_sparse"]) == Status("in progress", 2, 3)
    assert run_data.run_status(tmp_path / "nothing", HP) == Status("fresh", 0, 11)
    fill(store, units)
    assert run_data.run_status(store.dir, HP, ["oneshot"]) == Status("complete", 3, 3)
