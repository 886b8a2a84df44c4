"""MNIST and CIFAR-10 downloaded from their official sources into the data folder.

`fetch_mnist` and `fetch_cifar10` fetch what the folder (data.py's layout, torchvision's)
lacks, with a progress bar, and return the folder of the dataset's files. Every download is
checked against its published MD5 before it lands under its name; CIFAR-10's archive is then
extracted beside it. Offline, or when a download fails its check, one LTHError names the folder,
the files it expects and where to point instead. Files already in place are not read here:
data.py reads and checks them.
"""
import hashlib
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .errors import LTHError

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {  # name: MD5 of the official .gz archive
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str) -> None:
    """Fetch `url` to `dest` with a progress bar; verify its MD5 before it lands at `dest`.
    A failed download leaves nothing behind: no partial file and none of the folders it made."""
    made = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        if _md5(Path(tmp)) != md5:
            raise LTHError(f"checksum mismatch for {url}: expected MD5 {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        if not dest.exists():
            for folder in made:  # deepest first; stop at one that holds other files
                try:
                    folder.rmdir()
                except OSError:
                    break


def _missing_error(dataset: str, folder: Path, files: list, why: Exception) -> LTHError:
    return LTHError(f"{dataset} is not in {folder} and could not be downloaded ({why}); "
                    f"put {', '.join(files)} there, or point --data-dir (a notebook's data_dir) "
                    f"or LTH_DATA at a folder that has them")


def fetch_mnist(root: Path) -> Path:
    folder = root / "MNIST" / "raw"
    for name, md5 in MNIST_FILES.items():
        if (folder / name).exists() or (folder / f"{name}.gz").exists():
            continue
        errors = []
        for mirror in MNIST_MIRRORS:
            try:
                download(mirror + name + ".gz", folder / f"{name}.gz", md5)
                break
            except (OSError, LTHError) as e:
                errors.append(e)
        else:
            raise _missing_error("MNIST", folder, [f"{n}.gz" for n in MNIST_FILES], errors[-1])
    return folder


def fetch_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    if all((folder / name).exists() for name in CIFAR10_FILES):
        return folder
    archive = root / "cifar-10-python.tar.gz"
    try:
        if not archive.exists():
            download(CIFAR10_URL, archive, CIFAR10_MD5)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    except (OSError, LTHError, tarfile.TarError) as e:
        raise _missing_error("CIFAR-10", folder, CIFAR10_FILES, e) from None
    return folder
