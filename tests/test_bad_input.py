"""Bad input and damaged files: every kind is one `error: ...` line (an LTHError) naming the
file and what to do, nothing is written, and nothing is silently wrong.

Damaged data files are copies in tmp_path (the shared datasets are only read, through
symbolic links for the undamaged files); damaged results files are written into copies of
small runs' folders. A refused run must leave its results folder exactly as it found it: every
file is hashed before and after.
"""
import contextlib
import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lth_utils import cli
from lth_utils.data import CIFAR10_FILES, MNIST_FILES, read_cifar10_batch, read_mnist_file
from lth_utils.errors import LTHError

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def snapshot(folder):
    """Every file under `folder` (relative path -> sha256 of its bytes); None if absent."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def one_line(error: LTHError, *fragments):
    text = str(error)
    assert "\n" not in text and len(text.splitlines()) == 1, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def run_cli(*args):
    """`python -m lth_utils ARGS` in this process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        status = cli.main([str(a) for a in args])
    assert out.getvalue() == ""
    return status, err.getvalue()


def assert_refused(status, stderr, *fragments):
    assert status == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --- damaged data files ------------------------------------------------------------------------

def data_copy(root: Path, into: Path, damaged: str, data: bytes) -> Path:
    """A data folder `into` whose files are links to `root`'s, except `damaged` (a path
    relative to the folder), which holds `data`."""
    for sub in ("MNIST/raw", "cifar-10-batches-py"):
        (into / sub).mkdir(parents=True, exist_ok=True)
        if (root / sub).is_dir():
            for f in (root / sub).iterdir():
                (into / sub / f.name).symlink_to(f)
    target = into / damaged
    target.unlink(missing_ok=True)
    target.write_bytes(data)
    return into


def changed_byte(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]


MNIST_DAMAGE = {
    "cut short": lambda gz: gz[: len(gz) * 2 // 3],
    "one byte changed": lambda gz: changed_byte(gz, len(gz) // 2),
    "last byte changed": lambda gz: changed_byte(gz, len(gz) - 1),
    "not gzip": lambda gz: b"<html>404 Not Found</html>\n",
}


@pytest.mark.parametrize("name", MNIST_FILES)
@pytest.mark.parametrize("damage", MNIST_DAMAGE)
def test_a_damaged_mnist_file_is_one_line(data_dir, tmp_path, name, damage):
    gz = (data_dir / "MNIST" / "raw" / f"{name}.gz").read_bytes()
    folder = data_copy(data_dir, tmp_path, f"MNIST/raw/{name}.gz", MNIST_DAMAGE[damage](gz))
    with pytest.raises(LTHError) as info:
        read_mnist_file(folder / "MNIST" / "raw", name)
    one_line(info.value, f"{name}.gz is damaged", "delete it so it is downloaded again")


def uncompressed(data_dir, name):
    return gzip.decompress((data_dir / "MNIST" / "raw" / f"{name}.gz").read_bytes())


@pytest.mark.parametrize("name", MNIST_FILES)
@pytest.mark.parametrize("damage", ["header", "count", "type", "cut short", "one byte changed",
                                    "one byte more"])
def test_a_damaged_uncompressed_mnist_file_is_one_line(data_dir, tmp_path, name, damage):
    """An uncompressed IDX file (as torchvision leaves them) with a wrong header, cut short or
    with any one byte changed: the MD5 of the official contents catches what shapes cannot."""
    data = bytearray(uncompressed(data_dir, name))
    if damage == "header":
        data[3] += 1                  # one more dimension
    elif damage == "count":
        data[7] ^= 1                  # 60001 images
    elif damage == "type":
        data[2] = 0x0D                # floats
    elif damage == "one byte changed":
        data = changed_byte(bytes(data), len(data) - 1)
    elif damage == "one byte more":
        data += b"\0"
    else:
        data = data[: len(data) - 784]
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(LTHError) as info:
        read_mnist_file(folder, name)
    one_line(info.value, f"{name} is damaged", "delete it so it is downloaded again")


def test_every_changed_byte_of_a_gzipped_label_file_is_refused_or_harmless(data_dir, tmp_path):
    """Whichever byte of t10k-labels-idx1-ubyte.gz is changed, the file is refused, or (a byte
    of the gzip header's time stamp, say) it still gives the official labels."""
    name = "t10k-labels-idx1-ubyte"
    good = read_mnist_file(data_dir / "MNIST" / "raw", name)
    gz = (data_dir / "MNIST" / "raw" / f"{name}.gz").read_bytes()
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    refused = 0
    for at in range(0, len(gz), 11):
        (folder / f"{name}.gz").write_bytes(changed_byte(gz, at))
        try:
            assert np.array_equal(read_mnist_file(folder, name), good), at
        except LTHError as e:
            one_line(e, "is damaged")
            refused += 1
    assert refused > len(gz) // 11 - 5


def cifar_batch(data, labels):
    return pickle.dumps({b"batch_label": b"x", b"data": data, b"labels": labels,
                         b"filenames": []})


CIFAR_DAMAGE = {
    "cut short": lambda b: b[: len(b) // 2],
    "cut in its header": lambda b: b[:40],
    "one byte changed in its structure": lambda b: changed_byte(b, 2),
    "one more byte": lambda b: b + b"\0",
    "a pickle of something else": lambda b: pickle.dumps(list(range(10))),
    "a pickle that calls a function": lambda b: b"cos\nsystem\n(S'echo hello'\ntR.",
    "empty": lambda b: b"",
    "images of the wrong size": lambda b: cifar_batch(
        np.zeros((10_000, 1024), np.uint8), [0] * 10_000),
    "too few labels": lambda b: cifar_batch(
        np.zeros((10_000, 3072), np.uint8), [0] * 9_999),
    "a label out of range": lambda b: cifar_batch(
        np.zeros((10_000, 3072), np.uint8), [10] * 10_000),
    "float images": lambda b: cifar_batch(
        np.zeros((10_000, 3072), np.float32), [0] * 10_000),
}


@pytest.mark.parametrize("damage", CIFAR_DAMAGE)
def test_a_damaged_cifar10_batch_is_one_line(cifar_dir, tmp_path, damage):
    good = (cifar_dir / "cifar-10-batches-py" / "test_batch").read_bytes()
    path = tmp_path / "test_batch"
    path.write_bytes(CIFAR_DAMAGE[damage](good))
    with pytest.raises(LTHError) as info:
        read_cifar10_batch(path)
    one_line(info.value, "test_batch is damaged", "delete it", "copy it again")
    x, y = read_cifar10_batch(cifar_dir / "cifar-10-batches-py" / "test_batch")
    assert x.shape == (10_000, 3, 32, 32) and y.shape == (10_000,)


@pytest.mark.slow
def test_run_on_a_cut_short_mnist_file_is_one_line_and_writes_nothing(data_dir, tmp_path):
    """Through the command line, in a fresh process: exit status 2, one line, no --out."""
    name = "train-images-idx3-ubyte.gz"
    gz = (data_dir / "MNIST" / "raw" / name).read_bytes()
    data = data_copy(data_dir, tmp_path / "data", f"MNIST/raw/{name}", gz[: len(gz) // 2])
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "lth_utils", "run", "lenet", "mnist",
                           "--preset", "smoke", "--data-dir", str(data), "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and done.stdout == "", done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"error: {data / 'MNIST' / 'raw' / name} is damaged (EOFError")
    assert "delete it so it is downloaded again" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("damaged, arch, dataset", [
    ("MNIST/raw/t10k-labels-idx1-ubyte.gz", "lenet", "mnist"),
    ("cifar-10-batches-py/data_batch_3", "conv2", "cifar10")])
def test_run_on_any_damaged_data_file_is_one_line_and_writes_nothing(data_dir, cifar_dir,
                                                                     tmp_path, damaged, arch,
                                                                     dataset):
    """A byte of MNIST's last file changed, a CIFAR-10 batch cut short."""
    good = (data_dir / damaged).read_bytes()
    bad = changed_byte(good, len(good) // 3) if dataset == "mnist" else good[: len(good) - 9]
    data = data_copy(data_dir, tmp_path / "data", damaged, bad)
    out = tmp_path / "out"
    assert_refused(*run_cli("run", arch, dataset, "--preset", "smoke", "--data-dir", data,
                            "--out", out, "--no-progress"), f"{data / damaged} is damaged")
    assert not out.exists()


# --- a run whose loss becomes non-finite -----------------------------------------------------

def small(**changes):
    """LeNet, one trial, 20 iterations on 5,000 training images, evaluated every 10 on 100."""
    from lth_utils.config import resolve
    hp = dataclasses.replace(resolve("lenet", preset="smoke"), trials=1, rounds=1,
                             iterations=20, eval_every=10, eval_limit=100,
                             validation_size=55_000, rewind_iteration=0,
                             strategies=("winning_ticket",))
    return dataclasses.replace(hp, **changes)


def test_a_diverging_run_is_one_line_naming_the_unit_and_records_nothing(data_dir, tmp_path):
    """A learning rate of 1e30 (finite, so valid) turns every weight into ~1e30 at the first
    step: the next evaluation (iteration 10) measures a NaN loss."""
    preset = tmp_path / "diverge.yaml"
    preset.write_text("trials: 1\nrounds: 1\niterations: 20\neval_every: 10\neval_limit: 100\n"
                      "validation_size: 55000\nlearning_rate: 1.0e+30\n"
                      "strategies: [winning_ticket]\n")
    out = tmp_path / "out"
    status, stderr = run_cli("run", "lenet", "mnist", "--preset", preset, "--out", out,
                             "--data-dir", data_dir, "--no-progress")
    assert_refused(status, stderr, "lenet_winning_ticket_trial0_round0 diverged",
                   "loss is nan at iteration 10", "lower learning_rate")
    folder = out / "lenet_mnist_diverge"
    assert sorted(p.name for p in folder.iterdir()) == ["params.yaml", "provenance.jsonl"]


def test_a_unit_diverging_after_others_keeps_them_and_records_nothing_of_its_group(
        data_dir, tmp_path):
    """Late resetting starts from the dense run's weights at iteration k: scaled by 1e30 in its
    checkpoint (finite, the right shapes), the rewind unit diverges at its first evaluation;
    the winning tickets finished before it stay as they were."""
    import torch
    from lth_utils.experiment import Experiment
    from lth_utils.strategies import Unit
    hp = small(strategies=("winning_ticket", "rewind"), rewind_iteration=10)
    exp = Experiment(hp, tmp_path, data_dir)
    with pytest.raises(KeyboardInterrupt):  # round 0, then round 1's winning ticket
        exp.run(progress=False, stop_after_groups=2)
    dense = exp.store.checkpoint_path(Unit("winning_ticket", 0, 0), hp.iterations)
    ckpt = torch.load(dense, weights_only=True)
    ckpt["rewind"] = {k: v * 1e30 for k, v in ckpt["rewind"].items()}
    torch.save(ckpt, dense)
    before = snapshot(exp.dir)
    with pytest.raises(LTHError) as info:
        Experiment(hp, tmp_path, data_dir).run(progress=False)
    one_line(info.value, "lenet_rewind_trial0_round1 diverged", "at iteration 10")
    after = snapshot(exp.dir)
    assert after.pop("provenance.jsonl") != before.pop("provenance.jsonl")  # an invocation
    assert after == before  # no record, checkpoint, mask or CSV row of the rewind unit
    assert "rewind" not in (exp.dir / "metrics.csv").read_text()
