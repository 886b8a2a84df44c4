"""`python -m lth_utils`: bad input is one line on stderr, exit status 2, and no traceback."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lth_utils.config import Hparams
from lth_utils.experiment import CHECKPOINT_FORMAT, load_and_evaluate
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
], ids=["unknown-arch", "unknown-dataset", "wrong-pair", "unknown-preset", "unknown-strategy",
        "zero-trials"])
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
                          "weights must be 'trained' or 'initial'")
    assert_one_line_error(cli("evaluate", untrained_checkpoint, "--device", "tpu"),
                          "unknown device 'tpu'")


def test_argparse_usage_errors_exit_2(cli):
    result = cli("fly")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "invalid choice" in result.stderr


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
