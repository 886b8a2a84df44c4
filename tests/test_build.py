"""build.py end to end: `python build.py all --preset smoke` writes a report that shows every
figure; a rerun executes nothing; a notebook given a broken parameter fails the build cleanly.

The smoke build trains LeNet (two trials, two rounds, every strategy) and Conv-2/4/6 (one trial,
ten iterations) into a temporary folder: one to three minutes on two CPU cores, most of it the
conv nets. Everything is written under pytest's tmp_path, never into the repository.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The figures of a smoke build: Figure 3's levels other than 100% are not reached by smoke's two
# rounds (Pm 100, 80, 64), so only testacc_100.0 of the per-level figures exists.
SMOKE_FIGURES = {"overview_early_stop", "fig1_early_stop", "weights_vs_iteration",
                 "weights_vs_acc", "weights_vs_final_acc", "testacc_winning_tickets",
                 "testacc_reinit", "testacc_100.0", "conv_early_stop", "conv_final_acc"}
NOTEBOOKS = ["overview", "early_stopping", "test_accuracy", "conv"]

pytestmark = pytest.mark.slow


def _need_notebook_tools():
    missing = [m for m in ("papermill", "nbconvert", "nbformat", "ipykernel", "pandas",
                           "matplotlib") if not _importable(m)]
    if missing:
        message = f"{', '.join(missing)} not installed (pip install -e '.[notebooks]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _importable(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


def build(root: Path, data: Path, *args, timeout=900):
    """python build.py ARGS, with every output folder under `root`."""
    env = {**os.environ, "LTH_DATA": str(data), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "build.py"), *map(str, args),
           "--build-dir", root / "build", "--results-dir", root / "results",
           "--figures-dir", root / "figures"]
    started = time.time()
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=timeout)
    result.wall = time.time() - started
    return result


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory, data_dir, cifar_dir):
    """The smoke build, once for the module's tests."""
    _need_notebook_tools()
    root = tmp_path_factory.mktemp("smoke-build")
    result = build(root, data_dir, "all", "--preset", "smoke", "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    return root, result


def test_smoke_build_report_shows_every_figure(smoke_build):
    root, result = smoke_build
    report = root / "build" / "report"
    index = (report / "index.html").read_text()
    figures = {p.stem for p in (root / "figures").glob("*.png")}
    assert figures == SMOKE_FIGURES
    for name in SMOKE_FIGURES:
        for ext in ("png", "svg"):
            assert (root / "figures" / f"{name}.{ext}").stat().st_size > 1000
            copy = report / "figures" / f"{name}.{ext}"
            assert copy.read_bytes() == (root / "figures" / f"{name}.{ext}").read_bytes()
        assert f'src="figures/{name}.png"' in index, name
    # every notebook executed, rendered and linked; nothing marked as failed
    for name in NOTEBOOKS:
        assert (report / f"{name}.html").stat().st_size > 10_000
        assert f'href="{name}.html"' in index
        executed = json.loads((root / "build" / "notebooks" / f"{name}.ipynb").read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert errors == [], name
    assert "FAILED" not in index and "Every notebook ran to the end" in index
    # provenance and parameters are in the report; missing Figure 3 levels are named
    for fragment in ("git commit", "<code>smoke</code>", "wall time", "Parameters"):
        assert fragment in index
    assert "Not in these results: Pm = 51.3, 21.1, 7.0, 3.6, 1.9%" in index
    # progress was visible: which notebook, which experiment, how far
    assert re.search(r"early_stopping .*lenet_mnist_smoke \d+/22 runs", result.stdout)
    assert "conv6_cifar10_smoke" in result.stdout
    # beside the figures: what drew them
    manifest = json.loads((root / "figures" / "build.json").read_text())
    assert manifest["preset"] == "smoke" and manifest["git"]
    assert set(manifest["notebooks"]) == set(NOTEBOOKS)
    drawn = {f for nb in manifest["notebooks"].values() for f in nb["figures"]}
    assert drawn == SMOKE_FIGURES
    lenet = manifest["notebooks"]["early_stopping"]
    assert lenet["parameters"]["preset"] == "smoke"
    assert [v for k, v in lenet["results"].items() if k.endswith("lenet_mnist_smoke")] == [
        {"runs": 22, "of": 22}]


def test_rebuild_executes_nothing_and_keeps_results(smoke_build, data_dir):
    root, _ = smoke_build
    results = sorted(p.relative_to(root) for p in (root / "results").rglob("*.csv"))
    stamps = {p: (root / p).stat().st_mtime_ns for p in results}
    again = build(root, data_dir, "all", "--preset", "smoke", "--jobs", "2", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("up to date, not executed") == len(NOTEBOOKS), again.stdout
    assert "executing" not in again.stdout
    assert {p: (root / p).stat().st_mtime_ns for p in results} == stamps
    index = (root / "build" / "report" / "index.html").read_text()
    for name in SMOKE_FIGURES:
        assert f'src="figures/{name}.png"' in index


def test_broken_parameter_fails_the_build_cleanly(tmp_path, data_dir):
    """trials=0 is refused by lth_utils inside the notebook: the build stops with exit
    status 1 and a short message naming the notebook, the cell and the error, keeps the
    executed notebook and marks the failure in the report."""
    _need_notebook_tools()
    result = build(tmp_path, data_dir, "test_accuracy", "--preset", "smoke", "-p", "trials=0",
                   timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    assert "notebook test_accuracy failed in code cell" in err
    assert "LTHError: trials must be at least 1" in err
    assert "the cell: runs = nb.experiments(architectures, strategies, trials)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 6, err
    executed = tmp_path / "build" / "notebooks" / "test_accuracy.ipynb"
    assert executed.exists() and "LTHError" in executed.read_text()
    index = (tmp_path / "build" / "report" / "index.html").read_text()
    assert "The build failed: test_accuracy" in index
    assert "FAILED" in index and "trials must be at least 1" in index
    assert (tmp_path / "build" / "report" / "test_accuracy.html").exists()
    assert not list((tmp_path / "results").glob("*/summary.csv"))  # nothing was trained


def test_bad_command_line_is_one_line_and_status_2(tmp_path, data_dir):
    result = build(tmp_path, data_dir, "nosuchnotebook", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown notebook 'nosuchnotebook'; choose all, clean or one of "
        "overview, early_stopping, test_accuracy, conv"]
    assert not (tmp_path / "build").exists()
    listing = build(tmp_path, data_dir, "--list", "--preset", "smoke", timeout=120)
    assert listing.returncode == 0
    for name in NOTEBOOKS:
        assert name in listing.stdout


@pytest.mark.parametrize("preset,flags", [("smoke", ["--no-train"]), ("paper", [])])
def test_no_train_build_reads_what_exists_and_trains_nothing(tmp_path, data_dir, preset, flags):
    """`--no-train`, and the paper preset by default, with no results: the conv notebook says
    so and draws nothing; exit 0."""
    _need_notebook_tools()
    result = build(tmp_path, data_dir, "conv", "--preset", preset, *flags, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    executed = (tmp_path / "build" / "notebooks" / "conv.ipynb").read_text()
    assert f"No conv results for preset `{preset}`" in executed
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    manifest = json.loads((tmp_path / "figures" / "build.json").read_text())
    assert manifest["notebooks"]["conv"]["figures"] == []
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["build.json"]


def test_figures_folder_and_training_follow_the_preset():
    """figures/PRESET/ by default; the paper preset trains only when asked (--train)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_script", REPO / "build.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    made = lambda *argv: script.Build(script.parser().parse_args(["all", *argv]))  # noqa: E731
    assert made("--preset", "smoke").figures_dir == REPO / "figures" / "smoke"
    assert made("--preset", "params/quick.yaml").figures_dir == REPO / "figures" / "quick"
    assert [made("--preset", p, *f).train for p, f in [
        ("quick", []), ("paper", []), ("paper", ["--train"]), ("quick", ["--no-train"])]] == [
        True, False, True, False]


def test_committed_figures_were_drawn_from_the_committed_results():
    """figures/paper/build.json names the results each notebook read and how many of their runs
    were finished: the committed summary.csv files must hold exactly that many, so that the
    committed figures are those `python build.py all --preset paper` draws from them."""
    import importlib.util
    manifest_path = REPO / "figures" / "paper" / "build.json"
    if not manifest_path.exists():
        pytest.skip("no committed paper figures")
    spec = importlib.util.spec_from_file_location("build_script", REPO / "build.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from lth_utils.analysis import hparams
    manifest = json.loads(manifest_path.read_text())
    assert manifest["preset"] == "paper"
    checked = 0
    for name, notebook in manifest["notebooks"].items():
        params = notebook["parameters"]
        for folder, runs in notebook["results"].items():
            arch = Path(folder).name.split("_")[0]
            hp = hparams(arch, "paper", params.get("trials"), params.get("strategies"))
            done, total = script.experiment_progress(REPO / folder, hp, hp.strategies)
            assert {"runs": done, "of": total} == runs, (name, folder)
            checked += 1
    assert checked > 0
