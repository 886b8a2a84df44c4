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
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lth_utils import cli, download
from lth_utils.data import read_cifar10_batch, read_mnist_file
from lth_utils.download import MNIST_FILES, fetch_cifar10, fetch_mnist
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


class FakeResponse(io.BytesIO):
    headers = {}


@pytest.mark.parametrize("answer", ["offline", "wrong bytes"])
@pytest.mark.parametrize("fetch, folder", [(fetch_mnist, "MNIST/raw"),
                                           (fetch_cifar10, "cifar-10-batches-py")])
def test_a_failed_download_is_one_line_and_leaves_no_file_or_folder(tmp_path, monkeypatch,
                                                                    answer, fetch, folder):
    """Offline, or every mirror answering bytes that fail the MD5: one line naming the folder
    the files belong in, and the data folder is left as it was (here: absent)."""
    def urlopen(url, timeout):
        if answer == "offline":
            raise OSError("network unreachable")
        return FakeResponse(b"not the dataset")

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    root = tmp_path / "no-data" / "datasets"
    with pytest.raises(LTHError) as info:
        fetch(root)
    one_line(info.value, f"is not in {root / folder} and could not be downloaded", "LTH_DATA")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_keeps_the_files_already_fetched(tmp_path, monkeypatch):
    """MNIST's first file arrives, the second fails: the first stays (it passed its MD5),
    so a second try fetches only what is missing."""
    payload = b"first file"
    monkeypatch.setitem(download.MNIST_FILES, "train-images-idx3-ubyte",
                        hashlib.md5(payload).hexdigest())
    answers = iter([payload])

    def urlopen(url, timeout):
        try:
            return FakeResponse(next(answers))
        except StopIteration:
            raise OSError("network unreachable") from None

    monkeypatch.setattr(download.urllib.request, "urlopen", urlopen)
    with pytest.raises(LTHError):
        fetch_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    assert [p.name for p in raw.iterdir()] == ["train-images-idx3-ubyte.gz"]
    assert (raw / "train-images-idx3-ubyte.gz").read_bytes() == payload


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
    from lth_utils.presets import resolve
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


# --- damaged results files: refused in one line, the folder left as it was ------------------

NAME = "lenet_mnist_smoke"
HP = small(strategies=("winning_ticket", "oneshot"))  # round 0, then round 1: 3 units
DENSE = "lenet_winning_ticket_trial0_round0"


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, data_dir):
    """HP's round 0 finished, its round 1 group interrupted at iteration 10 (a state file)."""
    from lth_utils.experiment import Experiment
    out = tmp_path_factory.mktemp("stopped")
    for stop in ({"stop_after_groups": 1}, {"should_stop": lambda i: i == 10}):
        with pytest.raises(KeyboardInterrupt):
            Experiment(HP, out, data_dir).run(progress=False, **stop)
    folder = out / NAME
    assert len(list((folder / "checkpoints").glob("*.state.pt"))) == 1
    return folder


@pytest.fixture(scope="module")
def committed(stopped, tmp_path_factory):
    """The stopped folder as committed: params.yaml, provenance, CSVs, frontier/."""
    into = tmp_path_factory.mktemp("committed") / NAME
    into.mkdir()
    (into / "metrics.csv.gz").write_bytes(gzip.compress((stopped / "metrics.csv").read_bytes(),
                                                        mtime=0))
    for name in ("params.yaml", "summary.csv", "provenance.jsonl"):
        shutil.copy(stopped / name, into)
    shutil.copytree(stopped / "frontier", into / "frontier")
    return into


def torch_file(edit):
    """A damage that loads a torch file, edits the loaded object, and saves it again."""
    def damage(path):
        import torch
        obj = torch.load(path, weights_only=True)
        edit(obj)
        torch.save(obj, path)
    return damage


def cut(fraction=0.5):
    return lambda path: path.write_bytes(path.read_bytes()[: int(path.stat().st_size
                                                                * fraction)])


def other_network(ckpt):
    """A checkpoint of conv2 on CIFAR-10, with the right format tag."""
    from lth_utils.models import LotteryNet
    model = LotteryNet("conv2", "cifar10")
    ckpt["hparams"] = {**ckpt["hparams"], "arch": "conv2", "dataset": "cifar10"}
    ckpt["mask"], ckpt["initial"] = model.masks(), model.parameters_state()
    ckpt["trained"] = model.parameters_state()


def lines_edit(edit):
    def damage(path):
        path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))
    return damage


CKPT = f"checkpoints/{DENSE}_it20.pt"
STATE = "checkpoints/*.state.pt"
LOCAL = {  # file of the stopped folder: damage -> fragment of the message
    "checkpoint cut short": (CKPT, cut(), "not a readable checkpoint"),
    "checkpoint with an entry missing": (CKPT, torch_file(lambda c: c.pop("trained")),
                                         "is damaged (no trained)"),
    "checkpoint with a layer missing": (CKPT, torch_file(
        lambda c: c["mask"].pop("5")), "its mask holds"),
    "checkpoint with a tensor of the wrong shape": (CKPT, torch_file(
        lambda c: c["trained"].update({"layers.1.weight": c["trained"][
            "layers.1.weight"][:10]})), "its trained layers.1.weight is (10, 784)"),
    "checkpoint of another architecture": (CKPT, torch_file(other_network),
                                           "a checkpoint of arch 'conv2', not 'lenet'"),
    "checkpoint of another unit": (CKPT, torch_file(lambda c: c.update(round=1)),
                                   "the checkpoint of another unit"),
    "record cut short": (f"units/{DENSE}.json", cut(), "is damaged (JSONDecodeError)"),
    "record not JSON": (f"units/{DENSE}.json", lambda p: p.write_bytes(b"\x00\xff"),
                        "is damaged"),
    "record without its evaluations": (f"units/{DENSE}.json", lambda p: p.write_text(
        '{"strategy": "winning_ticket", "trial": 0, "round": 0, "pm": 100.0, "evals": []}'),
        "not the record of the unit"),
    "record of another unit": (f"units/{DENSE}.json", lambda p: p.write_text(
        p.read_text().replace('"round": 0', '"round": 2')), "not the record of the unit"),
    "params.yaml cut in its parameters": ("params.yaml", lines_edit(lambda lines: lines[:6]),
                                          "params.yaml is damaged (no "),
    "params.yaml cut in a line": ("params.yaml", lambda p: p.write_text(p.read_text()[:-3]),
                                  "params.yaml is damaged"),
    "group state cut short": (STATE, cut(), "not a readable group state file"),
    "group state with an entry missing": (STATE, torch_file(lambda s: s.pop("evals")),
                                          "is damaged or holds the state of other networks"),
    "group state of other networks": (STATE, torch_file(
        lambda s: s.update(weights=s["weights"][:-1])), "holds the state of other networks"),
}
COMMITTED = {
    "summary.csv with a line cut short": ("summary.csv", lambda p: p.write_text(
        p.read_text()[:-5]), "summary.csv is damaged (cut short)"),
    "summary.csv with a line missing a value": ("summary.csv", lines_edit(
        lambda ls: ls[:1] + [ls[1].rsplit(",", 1)[0] + "\n"]), "line 2 is not a row"),
    "summary.csv with a missing column": ("summary.csv", lines_edit(
        lambda ls: [ln.split(",", 1)[1] for ln in ls]), "its header is not"),
    "summary.csv with a non-number": ("summary.csv", lines_edit(
        lambda ls: ls[:1] + [ls[1].replace(",0,0,", ",0,zero,")]), "line 2 is not a row"),
    "metrics.csv.gz cut short": ("metrics.csv.gz", cut(0.7), "metrics.csv.gz is damaged"),
    "metrics.csv.gz with a non-number": ("metrics.csv.gz", lambda p: p.write_bytes(
        gzip.compress(gzip.decompress(p.read_bytes()).replace(b",val,", b",val,x", 1))),
        "metrics.csv.gz is damaged (line 2"),
    "metrics.csv.gz without a unit's training loss": ("metrics.csv.gz", lambda p: p.write_bytes(
        gzip.compress(b"".join(ln for ln in gzip.decompress(p.read_bytes()).splitlines(True)
                               if b",train," not in ln))), "measurements are incomplete"),
    "frontier file cut short": (f"frontier/{DENSE}.pt", cut(), "not a readable frontier file"),
    "frontier file with an entry missing": (f"frontier/{DENSE}.pt", torch_file(
        lambda e: e.pop("trained")), "its trained holds"),
    "frontier file with a tensor of the wrong shape": (f"frontier/{DENSE}.pt", torch_file(
        lambda e: e["trained"].update({"layers.3.bias": e["trained"]["layers.3.bias"][:5]})
    ), "its trained layers.3.bias is (5,)"),
    "frontier file of another unit": (f"frontier/{DENSE}.pt", torch_file(
        lambda e: e.update(strategy="oneshot")), "not the frontier file of the unit"),
}


def refused(folder, damage, data_dir, *fragments):
    """Damage a file of `folder` (a glob pattern), run HP there: one line naming that file
    and what to do, every file of the folder as it was, and no lock left in it."""
    from lth_utils.experiment import Experiment
    pattern, harm, fragment = damage
    path, = folder.glob(pattern)
    harm(path)
    before = snapshot(folder)
    with pytest.raises(LTHError) as info:
        Experiment(HP, folder.parent, data_dir).run(progress=False)
    one_line(info.value, path.name, fragment, *fragments)
    assert snapshot(folder) == before
    return str(info.value)


@pytest.mark.parametrize("damage", LOCAL)
def test_a_damaged_file_of_a_run_in_progress_is_one_line_and_nothing_is_written(
        stopped, tmp_path, data_dir, damage):
    folder = tmp_path / NAME
    shutil.copytree(stopped, folder)
    message = refused(folder, LOCAL[damage], data_dir)
    assert any(what in message for what in ("delete it", "restore it from git")), message


@pytest.mark.parametrize("damage", COMMITTED)
def test_a_damaged_file_of_a_committed_run_is_one_line_and_nothing_is_written(
        committed, tmp_path, data_dir, damage):
    folder = tmp_path / NAME
    shutil.copytree(committed, folder)
    refused(folder, COMMITTED[damage], data_dir, "restore it from git")
    assert not (folder / "units").exists() and not (folder / "checkpoints").exists()


def test_a_damaged_checkpoint_is_one_line_for_evaluate(stopped, tmp_path):
    path = tmp_path / "ckpt.pt"
    for name, (pattern, harm, fragment) in LOCAL.items():
        if pattern == CKPT and "another unit" not in name and "architecture" not in name:
            shutil.copy(stopped / CKPT, path)
            harm(path)
            assert_refused(*run_cli("evaluate", path), str(path), fragment)


@pytest.mark.parametrize("damage", ["cut short", "a changed byte", "other layers",
                                    "too few bits"])
def test_a_damaged_mask_file_is_one_line(tmp_path, damage):
    import torch
    from lth_utils.store import Store
    from lth_utils.strategies import Network, Unit
    net = Network(HP)
    store, unit = Store(tmp_path, "lenet", "mnist"), Unit("winning_ticket", 0, 1)
    mask = {n: torch.rand(shape) < 0.5 for n, shape in net.shapes.items()}
    store.write_mask(unit, mask)
    path = store.mask_path(unit)
    data = path.read_bytes()
    if damage == "cut short":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "a changed byte":
        path.write_bytes(changed_byte(data, len(data) // 3))
    else:
        bad = dict(mask)
        if damage == "other layers":
            bad.pop("1")
        else:
            bad["1"] = bad["1"][:100]
        store.write_mask(unit, bad)
    with pytest.raises(LTHError) as info:
        store.read_mask(unit, net.shapes)
    one_line(info.value, path.name, "restore it from git")


# --- the claims command ------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--results", "no/such/folder"], "no results folder no/such/folder"),
    (["--preset", "papr"], "unknown preset 'papr'; choose one of paper,"),
], ids=["missing-results-folder", "unknown-preset"])
def test_claims_on_a_mistyped_folder_or_preset_is_one_line(args, fragment):
    """A typo is refused, not read as a run that has no results (every claim "not run")."""
    assert_refused(*run_cli("claims", *args), fragment)


def test_claims_of_a_preset_without_runs_says_not_run(tmp_path):
    """A known preset with no runs in an existing folder is a table of "not run", status 0."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["claims", "--preset", "smoke", "--results", str(tmp_path)]) == 0
    rows = [ln for ln in out.getvalue().splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) > 1 and all("not run" in ln for ln in rows[1:])
