"""MNIST and CIFAR-10 from their standard files, held as tensors on the training device.

The folder layout is torchvision's, so one data folder serves both:
  <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
  <root>/cifar-10-batches-py/{data_batch_1..5,test_batch}
The folder is --data-dir, else $LTH_DATA, else ./data. Missing files are downloaded first
(download.py: from the official sources, checked against their published MD5s). Files in
place are read whole and checked: MNIST's against the MD5s of the official files' contents
(gzipped or not), CIFAR-10's batches by their structure, shapes, label range and class counts
(their pixels carry no checksum). A damaged file (cut short, a byte changed, another kind of
file) is one LTHError naming it and what to do.

Paper, Section 2 / Appendix G: 5,000 training examples are held out as a validation set (here
chosen by a fixed seed, the same for every trial). The paper does not state an input
normalization: "standardize" subtracts the training split's mean and divides by its standard
deviation, per channel; "scale" maps pixels to [0, 1] only (x/255). The default for each dataset
is paper.NORMALIZATION (the README's Faithfulness section says why).
"""
import functools
import gzip
import hashlib
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .download import CIFAR10_FILES, fetch_cifar10, fetch_mnist
from .errors import LTHError
from .paper import VALIDATION_SIZE, dataset_shape
from .paper import normalization as checked_normalization

SPLIT_SEED = 0

EXPECTED = {"mnist": (60_000, 10_000), "cifar10": (50_000, 10_000)}


def data_root(data_dir=None) -> Path:
    """The data folder, the one default everywhere: `data_dir` (--data-dir), else $LTH_DATA,
    else ./data in the working directory (as the README says)."""
    return Path(data_dir or os.environ.get("LTH_DATA") or Path.cwd() / "data").expanduser()


# --- reading ------------------------------------------------------------------------------

MNIST_SHAPES = {"train-images-idx3-ubyte": (60_000, 28, 28), "train-labels-idx1-ubyte": (60_000,),
                "t10k-images-idx3-ubyte": (10_000, 28, 28), "t10k-labels-idx1-ubyte": (10_000,)}
MNIST_CONTENT_MD5 = {  # of the decompressed official files: catches a changed byte in any copy
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_REMEDY = "delete it so it is downloaded again, or copy it again from a good copy"
CIFAR10_REMEDY = ("delete it (or its whole folder) so it is extracted and downloaded again, "
                  "or copy it again from a good copy")


def _damaged(path: Path, why: str, remedy: str) -> LTHError:
    return LTHError(f"{path} is damaged ({why}); {remedy}")


def read_idx(path: Path, shape: tuple | None = None) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not, as a uint8 array, read whole (a truncated
    or altered gzip file fails its CRC) and, given `shape`, of that shape only."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # cut short, a changed byte, not gzip
        raise _damaged(path, f"{type(e).__name__}: {e}", MNIST_REMEDY) from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise _damaged(path, "not an IDX file of unsigned bytes", MNIST_REMEDY)
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if shape is not None and dims != shape:
        raise _damaged(path, f"its header says shape {dims}, expected {shape}", MNIST_REMEDY)
    body = np.frombuffer(data, dtype=np.uint8, offset=min(4 + 4 * ndim, len(data)))
    if body.size != int(np.prod(dims, dtype=np.float64)):
        raise _damaged(path, f"{body.size} values for shape {dims}", MNIST_REMEDY)
    return body.reshape(dims)


def read_mnist_file(folder: Path, name: str) -> np.ndarray:
    """One of MNIST's four files (`name`, or `name`.gz), checked whole: its shape, its labels,
    and the MD5 of its contents, those of the official file."""
    path = folder / name if (folder / name).exists() else folder / f"{name}.gz"
    array = read_idx(path, MNIST_SHAPES[name])
    if "labels" in name and array.max() > 9:
        raise _damaged(path, f"a label is {array.max()}, not 0 to 9", MNIST_REMEDY)
    if _content_md5(array) != MNIST_CONTENT_MD5[name]:
        raise _damaged(path, "its contents differ from the official file's", MNIST_REMEDY)
    return array


def _content_md5(array: np.ndarray) -> str:
    """MD5 of the IDX file as the official one is: header, then the values."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    digest = hashlib.md5(header)
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return digest.hexdigest()


def _mnist_arrays(root: Path):
    folder = fetch_mnist(root)
    load = functools.partial(read_mnist_file, folder)
    train = load("train-images-idx3-ubyte")[:, None], load("train-labels-idx1-ubyte")
    test = load("t10k-images-idx3-ubyte")[:, None], load("t10k-labels-idx1-ubyte")
    return train, test


class _CifarUnpickler(pickle.Unpickler):
    """A CIFAR-10 batch holds a dict of bytes, lists and one numpy array: nothing else is
    built (a damaged or foreign pickle cannot call anything)."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                                                          "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}")
        return super().find_class(module, name)


def read_cifar10_batch(path: Path) -> tuple:
    """(images uint8 [10000, 3, 32, 32], labels int64 [10000]) of one CIFAR-10 batch file, read
    whole and checked: a dict with b"data" uint8 [10000, 3072] and 10000 labels 0 to 9."""
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
            extra = f.read(1)
    except Exception as e:  # cut short, a changed byte, another kind of file: all damage
        raise _damaged(path, f"{type(e).__name__}", CIFAR10_REMEDY) from None
    if extra:
        raise _damaged(path, "data after its end", CIFAR10_REMEDY)
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= set(batch):
        raise _damaged(path, "not a CIFAR-10 batch: no data and labels", CIFAR10_REMEDY)
    data, labels = batch[b"data"], batch[b"labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8
            and data.shape == (10_000, 3072)):
        raise _damaged(path, "its data is not 10000 x 3072 bytes", CIFAR10_REMEDY)
    if not (isinstance(labels, (list, np.ndarray)) and len(labels) == 10_000
            and all(isinstance(v, (int, np.integer)) and 0 <= v <= 9 for v in labels)):
        raise _damaged(path, "its labels are not 10000 numbers from 0 to 9", CIFAR10_REMEDY)
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _cifar10_arrays(root: Path):
    folder = fetch_cifar10(root)

    def load(names):
        xs, ys = zip(*(read_cifar10_batch(folder / name) for name in names))
        return np.concatenate(xs), np.concatenate(ys)
    return load(CIFAR10_FILES[:5]), load(CIFAR10_FILES[5:])


def _check(dataset: str, split: str, x: np.ndarray, y: np.ndarray, size: int) -> None:
    """Files already in place carry no archive checksum: check what they hold instead."""
    counts = np.bincount(y.astype(np.int64), minlength=10) if y.size else np.zeros(10)
    if len(x) != size or len(y) != size or len(counts) != 10 or counts.min() == 0:
        raise LTHError(f"{dataset} {split} files hold {len(x)} images, {len(y)} labels in "
                       f"{len(counts)} classes; expected {size} of each in 10 classes")


@functools.lru_cache(maxsize=4)
def load_arrays(dataset: str, root: Path):
    """((train_x, train_y), (test_x, test_y)) as uint8 images [N, C, H, W] and int labels."""
    dataset_shape(dataset)
    readers = {"mnist": _mnist_arrays, "cifar10": _cifar10_arrays}
    (train_x, train_y), (test_x, test_y) = readers[dataset](Path(root))
    n_train, n_test = EXPECTED[dataset]
    _check(dataset, "training", train_x, train_y, n_train)
    _check(dataset, "test", test_x, test_y, n_test)
    return (train_x, train_y.astype(np.int64)), (test_x, test_y.astype(np.int64))


# --- splits on the device --------------------------------------------------------------------

@dataclass
class Splits:
    """Training / validation / test tensors on one device, normalized, images [N, C, H, W]."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def split(self, name: str):
        if name not in ("train", "val", "test"):
            raise LTHError(f"unknown split {name!r}; choose train, val or test")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")


def load_splits(dataset: str, data_dir=None, validation_size: int = VALIDATION_SIZE,
                normalization: str | None = None, device="cpu") -> Splits:
    """The dataset with `validation_size` training examples held out by a fixed seed, normalized
    as `normalization` says (None: the dataset's default, paper.NORMALIZATION)."""
    normalization = checked_normalization(dataset, normalization)
    root = data_root(data_dir).resolve()
    (train_x, train_y), (test_x, test_y) = load_arrays(dataset, root)
    if not 0 < validation_size < len(train_x):
        raise LTHError(f"validation_size must be between 1 and {len(train_x) - 1}")
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[:validation_size], order[validation_size:]

    def tensor(a):
        return torch.from_numpy(np.array(a)).to(device)
    x, y = tensor(train_x).float().div_(255), tensor(train_y)
    test = tensor(test_x).float().div_(255)
    train_idx, val_idx = train_idx.to(device), val_idx.to(device)
    splits = Splits(x[train_idx], y[train_idx], x[val_idx], y[val_idx], test, tensor(test_y))
    if normalization == "standardize":
        mean = splits.train_x.mean(dim=(0, 2, 3), keepdim=True)
        std = splits.train_x.std(dim=(0, 2, 3), keepdim=True)
        for name in ("train_x", "val_x", "test_x"):
            setattr(splits, name, (getattr(splits, name) - mean) / std)
    return splits
