"""lth_utils.notebook: the notebooks' parameters resolved to folders, and each results folder
described from its files (run_data.describe_run). Made-up folders, no training."""
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")

from lth_utils import download, notebook, run_data  # noqa: E402
from lth_utils.errors import LTHError  # noqa: E402
from lth_utils.experiment import plan  # noqa: E402
from lth_utils.formats import SUMMARY_COLUMNS  # noqa: E402
from lth_utils.store import Store, results_folder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def write_run(results_dir: Path, preset="quick", trials=2, strategies=None,
              have=((0, 0), (0, 1), (1, 0))):
    """A LeNet results folder of `preset` whose run planned `trials` and `strategies`,
    holding only the winning tickets of the (trial, round) pairs `have`."""
    hp = run_data.hparams("lenet", preset, trials, strategies)
    folder = results_folder(results_dir, "lenet", "mnist", preset)
    Store(folder).write_params(hp, {"device": "cpu", "threads": 1})
    pms = {0: 100.0, 1: 80.04, 2: 64.06, 3: 51.29}
    rows = [["lenet", "mnist", "winning_ticket", t, r, pms[r], 100 * (r + 1), 0.1, 0.9, 0.9,
             0.95] for t, r in have]
    pd.DataFrame(rows, columns=SUMMARY_COLUMNS).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame(columns=["arch", "dataset", "strategy", "trial", "round", "pm", "iteration",
                          "split", "loss", "accuracy"]).to_csv(folder / "metrics.csv",
                                                               index=False)
    return folder


def test_the_repository_is_found_from_notebooks_from_elsewhere_and_in_a_copy(tmp_path):
    assert notebook.find_repo(REPO / "notebooks") == REPO
    assert notebook.find_repo(tmp_path) == REPO  # not in a checkout: this package's
    copy = tmp_path / "copy"
    (copy / "notebooks").mkdir(parents=True)
    (copy / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    assert notebook.find_repo(copy / "notebooks") == copy
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert notebook.find_repo(tmp_path / "other") == REPO


def test_defaults_are_the_committed_results_and_ignored_build_figures(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO / "notebooks")
    monkeypatch.delenv("LTH_DATA", raising=False)
    nb = notebook.setup()
    assert (nb.preset, nb.train, nb.device, nb.threads) == ("paper", False, "cpu", None)
    assert nb.results_dir == REPO / "results"
    assert nb.figures_dir == REPO / "build" / "figures" / "paper"
    assert nb.data_dir == REPO / "data"
    assert notebook.setup("params/quick.yaml").figures_dir == REPO / "build" / "figures" / "quick"
    monkeypatch.setenv("LTH_DATA", str(tmp_path / "data"))
    given = notebook.setup("quick", True, "../results_x", str(tmp_path / "figs"))
    assert given.results_dir == REPO / "results_x"  # relative to the working directory
    assert given.figures_dir == tmp_path / "figs"
    assert given.data_dir == tmp_path / "data"
    assert pd.get_option("display.max_rows") is None  # tables are shown whole


@pytest.mark.parametrize("options, message", [
    (dict(train="no"), "train must be True or False, not 'no'"),
    (dict(threads=0), "threads must be a whole number of at least 1, not 0"),
])
def test_bad_parameters_are_one_line(options, message):
    with pytest.raises(LTHError) as e:
        notebook.setup(**options)
    assert str(e.value) == message


def test_a_partial_folder_is_described_by_what_it_holds(tmp_path, capsys):
    folder = write_run(tmp_path, trials=2, strategies=["winning_ticket"])
    nb = notebook.setup("quick", results_dir=tmp_path, figures_dir=tmp_path / "figs")
    runs = nb.experiments(["lenet"], ["winning_ticket", "random_reinit"])
    d = run_data.describe_run(runs["lenet"])
    assert d.strategies == ("winning_ticket",) and d.trials == (0, 1) and d.rounds == (0, 1)
    assert (d.done, d.planned) == (3, 2 * 8)  # of its own run: 2 trials, rounds 0 to 7
    assert d.pm_min == pytest.approx(80.04)
    text = capsys.readouterr().out
    assert ("winning ticket; 2 trials (0 to 1); rounds 0 to 1 of 7 (Pm 100 to 80.0%); "
            "3 of 16 networks of its run. Not in this folder: reinit; rounds 2 to 7.") in text
    assert "`train = True` trains what it lacks" in text
    assert not (tmp_path / "figs").exists() and sorted(p.name for p in folder.iterdir()) == [
        "metrics.csv", "params.yaml", "summary.csv"]  # read, nothing trained or written


def test_a_missing_folder_is_named_and_left_out(tmp_path, capsys):
    nb = notebook.setup("quick", results_dir=tmp_path, figures_dir=tmp_path / "figs")
    assert nb.experiments("conv2", ["winning_ticket", "random_reinit"]) == {}
    text = capsys.readouterr().out
    assert "Conv-2 on CIFAR-10, preset `quick` (`" in text
    # 1 trial: 4 tickets, 3 reinit
    assert "no results yet (0 of 7 planned networks: winning ticket, reinit)." in text
    assert list(tmp_path.iterdir()) == []


def test_training_without_data_downloads_it_and_offline_says_so_in_one_line(tmp_path,
                                                                            monkeypatch):
    """As `run` does: missing files are fetched into data_dir; offline, one line naming the
    folder and both ways to point at the data, and no results folder written."""
    asked = []

    def offline(url, dest, md5):
        asked.append(url)
        raise OSError("network unreachable")

    monkeypatch.setattr(download, "download", offline)
    nb = notebook.setup("smoke", True, tmp_path / "results", tmp_path / "figs",
                        tmp_path / "no-data")
    with pytest.raises(LTHError) as e:
        nb.experiment("lenet")
    assert asked and "train-images-idx3-ubyte" in asked[0]
    message = str(e.value)
    assert "\n" not in message and f"MNIST is not in {tmp_path}/no-data/MNIST/raw" in message
    assert "a notebook's data_dir" in message and "LTH_DATA" in message
    assert not (tmp_path / "results").exists()


def test_the_committed_partial_conv2_run_is_described_from_its_folder():
    """Conv-2's committed paper run holds winning tickets of one trial: the description says
    so, whatever the preset plans (five trials of every strategy)."""
    folder = REPO / "results" / "conv2_cifar10_paper"
    if not Store(folder).has_results:
        pytest.skip("no committed Conv-2 run")
    d = run_data.describe_run(run_data.load_results(folder, run_data.hparams("conv2", "paper")))
    ran = Store(folder).read_hparams()
    assert d.strategies == ("winning_ticket",) and d.planned == len(plan(ran))
    assert d.done == len(d.rounds) * len(d.trials) and "reinit" in d.missing
