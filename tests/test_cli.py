"""`python -m lth_utils`: bad input is one line on stderr, exit status 2, and no traceback."""
import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_config import PRESET_TEXT

from lth_utils.config import Hparams
from lth_utils.errors import LTHError
from lth_utils.presets import resolve
from lth_utils.formats import CHECKPOINT_FORMAT
from lth_utils.evaluation import load_and_evaluate
from lth_utils.models import LotteryNet

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(tmp_path):
    """Run the command line in an empty folder, with no data and no way to download any."""
    nowhere = tmp_path / "no-data-here"
    nowhere.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "LTH_DATA": str(nowhere),
           # should a download be attempted on a machine that is online, it fails at once
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "no_proxy": "", "NO_PROXY": ""}

    def call(*args, timeout=120):
        return subprocess.run([sys.executable, "-m", "lth_utils", *map(str, args)], cwd=work,
                              env=env, capture_output=True, text=True, timeout=timeout)
    call.cwd, call.nowhere = work, nowhere
    return call


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("args, fragments", [
    (["resnet"], ["unknown architecture 'resnet'"]),
    (["lenet", "svhn"], ["unknown dataset 'svhn'"]),
    (["conv2", "mnist"], ["conv2 is not trained on mnist"]),
    (["lenet", "--preset", "nosuchpreset"], ["unknown preset 'nosuchpreset'"]),
    (["lenet", "--strategies", "lucky"], ["unknown strategy lucky"]),
    (["lenet", "--trials", "0"], ["trials must be at least 1"]),
    (["lenet", "--time-budget", "0"], ["--time-budget must be a positive number"]),
    (["lenet", "--time-budget", "nan"], ["--time-budget must be a positive number"]),
    (["lenet", "--threads", "-1"], ["--threads must be at least 1, not -1"]),
    (["lenet", "--max-models", "-3"], ["--max-models must be at least 0"]),
    (["lenet", "--threads", "abc"], ["argument --threads: invalid int value: 'abc'",
                                     "--help"]),
], ids=["unknown-arch", "unknown-dataset", "wrong-pair", "unknown-preset", "unknown-strategy",
        "zero-trials", "zero-budget", "nan-budget", "negative-threads", "negative-max-models",
        "threads-not-a-number"])
def test_run_rejects_bad_input(cli, tmp_path, args, fragments):
    out = tmp_path / "out"
    result = cli("run", *args, "--out", out, "--no-progress")
    assert_one_line_error(result, *fragments)
    assert not out.exists()
    assert list(cli.cwd.iterdir()) == []


def test_run_rejects_preset_with_unknown_key(cli, tmp_path):
    preset = tmp_path / "typo.yaml"
    preset.write_text("iterations: 10\narchitectures:\n  lenet:\n    learnig_rate: 0.1\n")
    out = tmp_path / "out"
    result = cli("run", "lenet", "--preset", preset, "--out", out, "--no-progress")
    assert_one_line_error(result, "unknown key architectures.lenet.learnig_rate")
    assert not out.exists()


def test_run_rejects_malformed_preset(cli, tmp_path):
    preset = tmp_path / "broken.yaml"
    preset.write_text("iterations: [10\n")
    out = tmp_path / "out"
    assert_one_line_error(cli("run", "--preset", preset, "--out", out), "not valid YAML")
    assert not out.exists()


def test_run_with_missing_data(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    result = cli("run", "lenet", "--preset", "smoke", "--data-dir", empty, "--out", out,
                 "--no-progress")
    assert_one_line_error(result, "MNIST is not in", str(empty))
    assert not out.exists()
    assert list(cli.cwd.iterdir()) == []
    # nothing was left behind where the download would have gone, and $LTH_DATA was not used
    assert [p for p in empty.rglob("*") if p.is_file()] == []
    assert list(cli.nowhere.iterdir()) == []


def test_run_with_missing_data_from_environment(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("run", "lenet", "--preset", "smoke", "--out", out, "--no-progress")
    assert_one_line_error(result, "MNIST is not in", str(cli.nowhere))
    assert not out.exists()


def test_evaluate_truncated_checkpoint(cli, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "x": torch.zeros(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_one_line_error(cli("evaluate", path), "not a readable checkpoint")


@pytest.mark.parametrize("content", [b"", b"hello\n"])
def test_evaluate_garbage_file(cli, tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    assert_one_line_error(cli("evaluate", path), "not a readable checkpoint")


def test_evaluate_foreign_and_missing(cli, tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.ones(2)}}, foreign)
    assert_one_line_error(cli("evaluate", foreign), "not an lth_utils checkpoint")
    assert_one_line_error(cli("evaluate", tmp_path / "absent.pt"), "no checkpoint at")


def test_evaluate_bad_options(cli, tmp_path, untrained_checkpoint):
    assert_one_line_error(cli("evaluate", untrained_checkpoint, "--weights", "best"),
                          "weights must be one of 'trained', 'initial', 'early_stop'")
    assert_one_line_error(cli("evaluate", untrained_checkpoint, "--device", "tpu"),
                          "unknown device 'tpu'")


def test_argparse_usage_errors_exit_2(cli):
    assert_one_line_error(cli("fly"), "invalid choice", "python -m lth_utils --help")


@pytest.fixture
def untrained_checkpoint(tmp_path):
    """A well-formed checkpoint of an initialized (untrained) LeNet, made without training."""
    hp = Hparams.paper("lenet")
    model = LotteryNet("lenet", "mnist")
    model.initialize(torch.Generator().manual_seed(0))
    state = model.parameters_state()
    path = tmp_path / "untrained.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "hparams": hp.to_dict(), "strategy":
                "winning_ticket", "trial": 0, "round": 0, "pm": 100.0,
                "iteration": hp.iterations, "mask": model.masks(), "initial": state,
                "trained": state}, path)
    return path


@pytest.mark.slow
def test_evaluate_good_checkpoint(cli, untrained_checkpoint, data_dir):
    """The positive control: a readable checkpoint and real data give exit status 0."""
    result = cli("evaluate", untrained_checkpoint, "--data-dir", data_dir, "--split", "test")
    assert result.returncode == 0, result.stderr
    loss, accuracy = load_and_evaluate(untrained_checkpoint, "test", data_dir)
    assert result.stdout.strip() == f"test: loss {loss:.4f}, accuracy {100 * accuracy:.2f}%"
    # and the same checkpoint without data is a one-line error again
    assert_one_line_error(cli("evaluate", untrained_checkpoint, "--data-dir", cli.nowhere),
                          "MNIST is not in")


def test_the_command_line_needs_no_pandas_except_for_claims():
    """pandas is an optional dependency (the notebooks extra): `run` and `evaluate` must not
    import it, and `claims`, which does, says what to install in one line."""
    code = ("import sys; sys.modules['pandas'] = None\n"
            "from lth_utils import cli\n"
            "sys.exit(cli.main(['claims']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the claims command needs pandas (pip install -e '.[notebooks]')"]


# --- in-process: options, defaults, --help --------------------------------------------------------

@pytest.fixture
def no_training(monkeypatch):
    """cli.main with run_experiment replaced by a recorder: nothing trains, nothing is written."""
    calls = []
    monkeypatch.setattr("lth_utils.experiment.run_experiment",
                        lambda hp, out, data_dir, device, **kw: calls.append((hp, out, kw)))
    return calls


def test_help_is_quick_and_imports_no_torch():
    code = ("import sys\nfrom lth_utils import cli\n"
            "for argv in (['--help'], ['run', '--help'], ['evaluate', '--help']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "usage: python -m lth_utils run" in result.stdout


def test_run_help_states_every_default():
    from lth_utils import cli
    run = next(a for a in cli.parser()._actions if a.dest == "command").choices["run"]
    for action in run._actions:
        if action.dest != "help":
            assert "default" in action.help, action.dest
    text = run.format_help()
    assert "default: paper" in text and "default: lenet" in text and "$LTH_DATA" in text
    assert "torch's own" in text and "shared CPU" in text


def test_top_level_help_states_what_run_does_by_default():
    from lth_utils import cli
    text = " ".join(cli.parser().format_help().split())
    for fragment in ("`run` with no arguments is `run lenet mnist --preset paper --out results`",
                     "trains nothing", "OUT = results", "$LTH_DATA, else ./data", "device cpu",
                     "torch's own number of threads", "engine stacked", "no time budget"):
        assert fragment in text


def committed_results():
    """Every file of the committed runs (path -> sha256) and the entries of results/ (a lock
    file or a new folder would show there)."""
    results = REPO / "results"
    files = {str(p.relative_to(results)): hashlib.sha256(p.read_bytes()).hexdigest()
             for folder in sorted(results.glob("*_paper*")) for p in sorted(folder.rglob("*"))
             if p.is_file()}
    return files, sorted(p.name for p in results.iterdir())


@pytest.mark.parametrize("args", [[], ["lenet", "mnist", "--preset", "paper_standardize"],
                                  ["conv2", "cifar10"]],
                         ids=["no-arguments", "lenet-standardized", "conv2-cifar10"])
def test_the_first_commands_leave_the_committed_results_as_they_are(args, monkeypatch, capsys):
    """In a clone, `run` (the paper's LeNet run) and `run lenet mnist --preset
    paper_standardize` each find a complete committed folder: each says so, and how to read
    it, and exits 0; `run conv2 cifar10` (a partial committed folder
    that keeps the checkpoints of its winning tickets only) is refused in one line before
    anything is read or written. Nothing may train: loading data fails the test."""
    from lth_utils import cli

    def no_data(*_, **__):
        raise AssertionError("the run went on to load data, to train")
    monkeypatch.chdir(REPO)
    monkeypatch.setattr("lth_utils.experiment.load_splits", no_data)
    before = committed_results()
    assert len(before[0]) >= 8
    code = cli.main(["run", *args, "--no-progress"])
    out, err = capsys.readouterr()
    assert committed_results() == before
    if args[:1] == ["conv2"]:
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert ("results/conv2_cifar10_paper holds 7 finished networks (winning_ticket; rounds "
                "0 to 6) and cannot train random_reinit" in err)
        assert "add --strategies winning_ticket" in err and "--out DIR" in err
    else:
        preset = args[-1] if args else "paper"
        assert code == 0 and err == ""
        assert out.startswith(f"results/lenet_mnist_{preset} is complete: 365 networks")
        for fragment in ("nothing to train", f"python -m lth_utils claims --preset {preset}",
                         "notebooks/", f"python build.py all --preset {preset}", "--out DIR",
                         "--preset quick"):
            assert fragment in out


def test_threads_default_is_torch_s_own(no_training, tmp_path, monkeypatch):
    from lth_utils import cli
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    argv = ["run", "lenet", "--preset", "smoke", "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli.main(argv) == 0 and set_to == []
    assert cli.main(argv + ["--threads", "1"]) == 0 and set_to == [1]
    assert len(no_training) == 2 and no_training[0][0].preset == "smoke"


def test_data_root_default(tmp_path, monkeypatch):
    from lth_utils.data import data_root
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LTH_DATA", raising=False)
    assert data_root() == tmp_path / "data"
    monkeypatch.setenv("LTH_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "flag") == tmp_path / "flag"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=PRESET_TEXT, arch=st.sampled_from(["lenet", "conv2"]))
def test_any_preset_on_the_command_line(no_training, text, arch):
    """The command line agrees with resolve: exit 0 (and the same parameters reach the run),
    or exit 2 with one line on stderr and no traceback."""
    from lth_utils import cli
    no_training.clear()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.yaml"
        path.write_text(text)
        try:
            expected = resolve(arch, preset=str(path))
        except LTHError:
            expected = None
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = cli.main(["run", arch, "--preset", str(path), "--out", f"{folder}/out",
                             "--no-progress"])
        if expected is None:
            lines = stderr.getvalue().splitlines()
            assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
            assert no_training == []
        else:
            assert code == 0 and stderr.getvalue() == ""
            assert [hp for hp, _, _ in no_training] == [expected]
        assert not (Path(folder) / "out").exists()


# --- packaging ------------------------------------------------------------------------------------

def test_wheel_ships_the_presets_and_claims(tmp_path):
    """A wheel built from the project's files holds params/*.yaml as lth_utils/params/."""
    pytest.importorskip("setuptools")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("lth_utils", "params"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                             "--no-build-isolation", "-q", "-w", str(tmp_path / "whl"),
                             str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "whl").glob("lottery_ticket-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"lth_utils/params/{p.name}" for p in (REPO / "params").glob("*.yaml")}
    assert {"lth_utils/params/claims.yaml", "lth_utils/params/paper.yaml",
            "lth_utils/params/smoke.yaml"} <= shipped <= names
    assert "lth_utils/cli.py" in names


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly():
    """`python -m lth_utils claims ... | head -1`: the reader is gone before the table is
    written; the command stops without a traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "lth_utils", "claims", "--preset", "paper"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    proc.stdout.close()  # before the command has printed anything
    _, err = proc.communicate(timeout=120)
    assert err.decode() == "" and proc.returncode == 1
