"""Shared fixtures: where the real datasets are, and a single CPU thread for torch.

On Intel CPUs, MKL picks its matrix-product kernels (AVX-512) by the thread count and the
matrices' shapes, so a network's bits would depend on --threads and on its group: the tests
run with MKL_CBWR=AUTO,STRICT there (MKL's bitwise-reproducible mode, read at its first call),
the setting README.md ("The engine") gives for such a run. AMD CPUs need no setting.

The datasets folder is $LTH_DATA if set, else <repo>/../shared/datasets. Tests that need a
dataset ask for `data_dir` (MNIST) or `cifar_dir`: skipped when its files are missing, failed
in CI (where $CI is set), where they must be there.
"""
import os
from pathlib import Path

import pytest
import torch

from lth_utils.provenance import cpuinfo

REPO = Path(__file__).resolve().parent.parent

if cpuinfo("vendor_id") == "GenuineIntel":
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@pytest.fixture(scope="module")
def torch_single_thread():
    """One torch thread for a module's tests (restored afterwards). The LeNets trained in the
    unit tests are tiny: on a small shared machine torch's thread-per-core default mostly
    spins, tens of times slower when another process holds a core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _missing(what: str, root: Path):
    """Skip where the data is absent, but fail in CI, where it must be there."""
    message = f"{what} not found under {root} (set LTH_DATA)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def shared_datasets() -> Path:
    return Path(os.environ.get("LTH_DATA") or REPO.parent / "shared" / "datasets").resolve()


def _has_mnist(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return all((raw / n).exists() or (raw / f"{n}.gz").exists() for n in MNIST_FILES)


def _has_cifar10(root: Path) -> bool:
    return all((root / "cifar-10-batches-py" / n).exists() for n in CIFAR10_FILES)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared datasets folder (holding at least MNIST); skips the test if it is missing."""
    root = shared_datasets()
    if not _has_mnist(root):
        _missing("MNIST", root)
    return root


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    """The shared datasets folder holding CIFAR-10; skips the test if it is missing."""
    root = shared_datasets()
    if not _has_cifar10(root):
        _missing("CIFAR-10", root)
    return root
