"""build.py end to end: `python build.py all --preset smoke` writes, under its build folder
only, a report that leads with the claims and shows every figure; a rerun executes nothing;
`publish` copies the figures and their manifest; a broken parameter fails the build cleanly.

The smoke build trains LeNet (two trials, two rounds, every strategy) and Conv-2/4/6 (one trial,
ten iterations) into a temporary folder: one to three minutes on two CPU cores, most of it the
conv nets. Everything is written under pytest's tmp_path, never into the repository.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent

# The figures of a smoke build: Figure 3's levels other than 100% are not reached by smoke's two
# rounds (Pm 100, 80, 64), so only testacc_100.0 of the per-level figures exists.
SMOKE_FIGURES = {"overview_early_stop", "fig1_early_stop", "weights_vs_iteration",
                 "weights_vs_acc", "weights_vs_final_acc", "testacc_winning_tickets",
                 "testacc_reinit", "testacc_100.0", "conv_early_stop", "conv_final_acc",
                 # Appendix F from the smoke run's masks (no movement.csv: not drawn)
                 "anatomy_input_survivors", "anatomy_layer_pm", "anatomy_initial_weights"}


def script():
    spec = importlib.util.spec_from_file_location("build_script", REPO / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NOTEBOOKS = list(script().NOTEBOOKS)


def build(root: Path, data: Path, *args, timeout=1800):
    """python build.py ARGS, with its build and results folders under `root`, its notebooks
    on one torch thread each (the suite runs test files side by side: see the Makefile)."""
    env = {**os.environ, "LTH_DATA": str(data), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / "build.py"), *map(str, args),
           "--build-dir", root / "build", "--results-dir", root / "results", "--threads", "1"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "figures", "notebooks"],
                          cwd=REPO, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def smoke_build(tmp_path_factory, data_dir, cifar_dir):
    """The smoke build, once for the module's tests, and the repository's state around it."""
    root = tmp_path_factory.mktemp("smoke-build")
    before = git_status()
    result = build(root, data_dir, "all", "--preset", "smoke", "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    return root, result, before, git_status()


@pytest.mark.slow
def test_smoke_build_report_leads_with_the_claims_and_shows_every_figure(smoke_build):
    root, result, before, after = smoke_build
    assert after == before  # nothing tracked or untracked written into the repository
    assert not (REPO / "figures" / "smoke").exists()
    figures, report = root / "build" / "figures" / "smoke", root / "build" / "report"
    index = (report / "index.html").read_text()
    assert f"<code>{(figures / 'build.json').resolve()}</code>" in index  # where it was written
    assert {p.stem for p in figures.glob("*.png")} == SMOKE_FIGURES
    for name in SMOKE_FIGURES:
        for ext in ("png", "svg"):
            copy = report / "figures" / f"{name}.{ext}"
            assert copy.read_bytes() == (figures / f"{name}.{ext}").read_bytes()
            assert copy.stat().st_size > 1000
        assert f'src="figures/{name}.png"' in index, name
    # the verdicts come first: the summary line and the claims table, then the notebooks
    counts = re.search(r"(\d+) holds?</span>\s*<span[^>]*>(\d+) do(?:es)? not hold</span>\s*"
                       r"<span[^>]*>(\d+) not run", index)
    from lth_utils.claims import load_claims
    assert counts and sum(map(int, counts.groups())) == len(load_claims())
    assert index.index('id="claims"') < index.index('id="notebooks"') < index.index(
        f'id="{NOTEBOOKS[0]}"')
    assert index.count('<td class="claim">') == len(load_claims())
    # every notebook executed, rendered with its wall time, linked; nothing failed
    for name in NOTEBOOKS:
        page = (report / f"{name}.html").read_text()
        assert "wall time" in page and f'href="{name}.html"' in index
        executed = json.loads((root / "build" / "notebooks" / "smoke" / f"{name}.ipynb")
                              .read_text())
        assert executed["metadata"]["papermill"]["duration"] > 0
        assert not [o for c in executed["cells"] for o in c.get("outputs", [])
                    if o.get("output_type") == "error"], name
    assert f"All {len(NOTEBOOKS)} notebooks ran to the end" in index and "failed" not in index
    assert index.count("wall time") >= len(NOTEBOOKS)
    assert "Not in these results: Pm = 51.3, 21.1, 7.0, 3.6, 1.9%" in index
    # progress came from the results store: which notebook, which experiment, how far
    assert re.search(r"early_stopping .*lenet_mnist_smoke \d+/22 runs", result.stdout)
    assert "conv6_cifar10_smoke" in result.stdout
    # beside the figures: what drew them
    manifest = json.loads((figures / "build.json").read_text())
    assert manifest["preset"] == "smoke" and manifest["git"]
    assert set(manifest["notebooks"]) == set(NOTEBOOKS)
    assert {f for nb in manifest["notebooks"].values() for f in nb["figures"]} == SMOKE_FIGURES
    lenet = manifest["notebooks"]["early_stopping"]
    assert lenet["parameters"]["preset"] == "smoke" and lenet["parameters"]["train"] is True
    assert [v for k, v in lenet["results"].items() if k.endswith("lenet_mnist_smoke")] == [
        {"runs": 22, "of": 22}]


@pytest.mark.slow
def test_rebuild_executes_nothing_and_keeps_results(smoke_build, data_dir):
    root = smoke_build[0]
    results = sorted(p.relative_to(root) for p in (root / "results").rglob("*.csv"))
    stamps = {p: (root / p).stat().st_mtime_ns for p in results}
    again = build(root, data_dir, "all", "--preset", "smoke", "--jobs", "2", timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("up to date, not executed") == len(NOTEBOOKS), again.stdout
    assert "executing" not in again.stdout
    assert {p: (root / p).stat().st_mtime_ns for p in results} == stamps
    index = (root / "build" / "report" / "index.html").read_text()
    for name in SMOKE_FIGURES:
        assert f'src="figures/{name}.png"' in index


@pytest.mark.slow
def test_publish_copies_the_figures_and_their_manifest(smoke_build, data_dir, tmp_path):
    root = smoke_build[0]
    target = tmp_path / "published"
    target.mkdir()
    (target / "stale_figure.png").write_bytes(b"not drawn by this build")
    result = build(root, data_dir, "publish", "--preset", "smoke", "--to", target, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    built = root / "build" / "figures" / "smoke"
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in built.iterdir())
    for p in target.iterdir():
        assert p.read_bytes() == (built / p.name).read_bytes()
    nothing = build(tmp_path, data_dir, "publish", "--preset", "smoke", "--to", target)
    assert nothing.returncode == 2
    assert len(nothing.stderr.strip().splitlines()) == 1
    assert nothing.stderr.startswith("error: nothing to publish: no build of preset smoke")


@pytest.mark.slow
def test_broken_parameter_fails_the_build_cleanly(tmp_path, data_dir):
    """trials=0 is refused by lth_utils inside the notebook: the build stops with exit
    status 1 and a short message naming the notebook, the cell and the error, keeps the
    executed notebook and marks the failure in the report."""
    result = build(tmp_path, data_dir, "test_accuracy", "--preset", "smoke", "-p", "trials=0",
                   timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    assert re.search(r"notebook test_accuracy failed in code cell \d+ \(In \[\d+\]\): "
                     r"LTHError: trials must be at least 1", err), err
    assert "the cell: runs = nb.experiments(architectures, strategies, trials)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 6, err
    executed = tmp_path / "build" / "notebooks" / "smoke" / "test_accuracy.ipynb"
    assert executed.exists() and "LTHError" in executed.read_text()
    index = (tmp_path / "build" / "report" / "index.html").read_text()
    assert "Failed: test_accuracy" in index and "trials must be at least 1" in index
    assert (tmp_path / "build" / "report" / "test_accuracy.html").exists()
    assert not list((tmp_path / "results").glob("*/summary.csv"))  # nothing was trained


@pytest.mark.slow
@pytest.mark.parametrize("preset,flags", [("smoke", ["--no-train"]), ("paper", [])])
def test_no_train_build_reads_what_exists_and_trains_nothing(tmp_path, data_dir, preset, flags):
    """`--no-train`, and the paper preset by default, with no results: the conv notebook draws
    nothing and says so; exit 0; every claim is "not run"."""
    result = build(tmp_path, data_dir, "conv", "--preset", preset, *flags, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    figures = tmp_path / "build" / "figures" / preset
    manifest = json.loads((figures / "build.json").read_text())
    assert manifest["notebooks"]["conv"]["figures"] == []
    assert [p.name for p in figures.iterdir()] == ["build.json"]
    index = (tmp_path / "build" / "report" / "index.html").read_text()
    assert "0 hold" in index and "0 do not hold" in index


def test_bad_command_line_is_one_line_and_status_2(tmp_path, data_dir):
    for args, message in [(["nosuchnotebook"], "error: unknown target 'nosuchnotebook'; "
                           f"choose all, publish, clean or one of {', '.join(NOTEBOOKS)}"),
                          (["all", "--preset", "nosuch"], "error: unknown preset 'nosuch'"),
                          (["all", "-p", "trials"], "error: -p expects NAME=VALUE")]:
        result = build(tmp_path, data_dir, *args, timeout=120)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "build").exists()
    listing = build(tmp_path, data_dir, "--list", "--preset", "smoke", timeout=120)
    assert listing.returncode == 0 and all(name in listing.stdout for name in NOTEBOOKS)


def test_parameters_follow_the_preset_and_what_each_notebook_declares():
    """Figures go to build/figures/PRESET/; the paper protocol's presets train only when asked;
    a notebook gets only the parameters its `parameters` cell declares."""
    b = script()
    made = lambda *argv: b.Build(b.parser().parse_args(["all", *argv]))  # noqa: E731
    assert made("--preset", "smoke").figures_dir == REPO / "build" / "figures" / "smoke"
    assert made("--preset", "params/quick.yaml").figures_dir == REPO / "build" / "figures" / "quick"
    assert [made("--preset", p, *f).train for p, f in [
        ("quick", []), ("paper", []), ("paper_standardize", []), ("paper", ["--train"]),
        ("quick", ["--no-train"])]] == [True, False, False, True, False]
    params = made("--preset", "smoke", "-p", "trials=2", "-p", "undeclared=1").parameters("conv")
    assert params["trials"] == 2 and params["progress"] is False and "undeclared" not in params
    assert params["figures_dir"] == str(REPO / "build" / "figures" / "smoke")
    assert set(params) <= set(b.declared("conv"))
    # No one is at a batch run to use the anatomy notebook's ipywidgets explorer, and nbclient
    # can hang on widgets: the build turns it off, and -p can turn it on again.
    assert made("--preset", "smoke").parameters("anatomy")["explore"] is False
    assert made("--preset", "smoke", "-p", "explore=true").parameters("anatomy")["explore"] is True


def test_a_variant_run_is_an_input_of_its_base_presets_build_only(tmp_path):
    """A build of `paper` reads its variants' runs too (the sensitivity table, the anatomy
    views): a new round of the standardized run makes the overview stale; a preset whose name a
    variant's folder merely ends with reads nothing of it."""
    import shutil
    from lth_utils.claims_report import run_folders
    results = tmp_path / "results"
    for name in ("lenet_mnist_paper", "lenet_mnist_paper_standardize"):
        (results / name).mkdir(parents=True)
        shutil.copy(REPO / "results" / name / "params.yaml", results / name)
        (results / name / "summary.csv").write_text("round\n0\n")
    b = script()
    made = lambda preset: b.Build(b.parser().parse_args(  # noqa: E731
        ["all", "--preset", preset, "--results-dir", str(results)]))
    assert [f.name for f in run_folders(results, "paper")] == \
        ["lenet_mnist_paper", "lenet_mnist_paper_standardize"]
    assert run_folders(results, "standardize") == [] and run_folders(results, "quick") == []
    assert [f.name for f in run_folders(results, "paper", own=False)] == \
        ["lenet_mnist_paper_standardize"]
    assert {f.name for f in made("paper").folders("anatomy")} >= \
        {"lenet_mnist_paper", "lenet_mnist_paper_standardize"}
    before = {p: made(p).inputs("overview") for p in ("paper", "quick")}
    (results / "lenet_mnist_paper_standardize" / "summary.csv").write_text("round\n0\n1\n")
    after = {p: made(p).inputs("overview") for p in ("paper", "quick")}
    assert after["paper"] != before["paper"] and after["quick"] == before["quick"]
    # a notebook that does not read a folder of its own preset is not made stale by it
    # (another notebook of the build may be training there while this one runs)
    conv = made("paper").inputs("conv")
    (results / "lenet_mnist_paper" / "summary.csv").write_text("round\n0\n1\n")
    assert made("paper").inputs("conv") == conv


def test_report_without_results_leads_with_claims_not_run(tmp_path):
    """The front page of a build that has nothing yet: every claim "not run", the summary
    line, the claims table before the notebooks, each notebook "not built"."""
    from lth_utils.claims import load_claims
    from lth_utils.report import write_report
    b = script()
    fake = SimpleNamespace(dir=tmp_path, repo=REPO, stem="paper", results_dir=tmp_path / "r",
                           figures_dir=tmp_path / "figures" / "paper", overrides={}, train=False,
                           args=SimpleNamespace(device="cpu"),
                           executed=lambda name: tmp_path / f"{name}.ipynb",
                           experiments=lambda name: [])
    stale = tmp_path / "report" / "figures" / "conv_early_stop.png"  # another preset's build
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"png")
    index = write_report(fake, b.NOTEBOOKS).read_text()
    assert not stale.exists()
    n = len(load_claims())
    assert "0 hold</span>" in index and f"{n} not run</span>" in index
    assert index.count(">not run</span>") == n
    assert index.index('id="claims"') < index.index(f'id="{NOTEBOOKS[0]}"')
    assert "Not built: " + ", ".join(NOTEBOOKS) in index
    assert (tmp_path / "report" / "report.css").is_file()


def test_report_of_the_paper_preset_shows_the_sensitivity_table(tmp_path, monkeypatch):
    """On the committed runs, the front page of a `paper` build sets each claim's verdict on
    the x/255 run beside the standardized run's, cell for cell as claims_report gives them; a
    preset without variants has no such section; an unreadable variant is the claims' error."""
    import html
    from lth_utils import claims_report
    from lth_utils.report import write_report
    table = claims_report.sensitivity(REPO / "results")
    if table.empty:
        pytest.skip("no committed variant run")
    b = script()

    def front_page(stem):
        fake = SimpleNamespace(dir=tmp_path / stem, repo=REPO, stem=stem,
                               results_dir=REPO / "results",
                               figures_dir=tmp_path / stem / "figures", overrides={},
                               train=False, args=SimpleNamespace(device="cpu"),
                               executed=lambda name: tmp_path / f"{name}.ipynb",
                               experiments=lambda name: [])
        return html.unescape(write_report(fake, b.NOTEBOOKS).read_text())

    index = front_page("paper")
    section = index[index.index('id="sensitivity"'):index.index('id="notebooks"')]
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    assert re.findall(r"<th>(.*?)</th>", rows[0]) == list(table.columns)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows[1:]]
    assert cells == [[str(v) for v in row] for row in table.values.tolist()]
    assert any("holds" in c for row in cells for c in row) and \
        any("does not hold" in c for row in cells for c in row)
    assert 'id="sensitivity"' not in front_page("quick")
    # a variant's folder that cannot be read is the claims' error banner, not a traceback
    from lth_utils.errors import LTHError
    from lth_utils.report import claims_context

    def unreadable(results_dir, preset):
        if preset != "paper":
            raise LTHError(f"{preset}'s folder is damaged")
        return {}

    monkeypatch.setattr(claims_report, "load_runs", unreadable)
    context = claims_context(REPO / "results", "paper")
    assert context["error"] == "paper_standardize's folder is damaged"
    assert context["sensitivity"] == {} and context["rows"] == []


def test_committed_figures_were_drawn_from_the_committed_results():
    """figures/paper/build.json names the results each notebook read and how many of their runs
    were finished: the committed summary.csv files must hold exactly that many, so that the
    committed figures are those `python build.py all --preset paper` draws from them."""
    from lth_utils.run_data import folder_status, hparams
    manifest_path = REPO / "figures" / "paper" / "build.json"
    if not manifest_path.exists():
        pytest.skip("no committed paper figures")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["preset"] == "paper"
    checked = 0
    for name, notebook in manifest["notebooks"].items():
        params = notebook["parameters"]
        for folder, runs in notebook["results"].items():
            arch = Path(folder).name.split("_")[0]
            hp = hparams(arch, "paper", params.get("trials"), params.get("strategies"))
            status = folder_status(REPO / folder, hp)
            assert {"runs": status.done, "of": status.planned} == runs, (name, folder)
            checked += 1
    assert checked > 0
