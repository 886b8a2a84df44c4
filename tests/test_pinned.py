"""Pinned numbers: the smoke experiments of tests/data/pinned.yaml (the `smoke` preset with its
normalization written out) give, byte for byte, the summary.csv and metrics.csv whose sha256
tests/data/pinned.VENDOR.sha256 holds for this CPU's vendor (float kernels differ between
Intel's and AMD's CPUs; conftest.py). A change to the training, the data pipeline, the seeds or
the CSV format shows here first.

When the numbers change on purpose, regenerate the hashes (and say why in the commit):

    rm -rf /tmp/pinned && for exp in "lenet mnist" "conv2 cifar10"; do
        python -m lth_utils run $exp --preset tests/data/pinned.yaml --threads 1 \\
            --out /tmp/pinned --no-progress; done
    (cd /tmp/pinned && sha256sum */summary.csv */metrics.csv | sort -k2) \\
        > tests/data/pinned.$(grep -m1 vendor_id /proc/cpuinfo | cut -d' ' -f2).sha256

(on Intel CPUs with MKL_CBWR=AUTO,STRICT set, as the tests set it).
"""
import hashlib
from pathlib import Path

import pytest
import torch

from lth_utils import cli
from lth_utils.provenance import cpuinfo

DATA = Path(__file__).resolve().parent / "data"
PINNED = DATA / f"pinned.{cpuinfo('vendor_id') or 'unknown'}.sha256"  # this CPU vendor's
REGENERATE = "see tests/test_pinned.py's docstring for the command that regenerates them"


def expected_hashes() -> dict:
    """{'<folder>/<file>': sha256} from this CPU vendor's file (sha256sum's format)."""
    assert PINNED.is_file(), f"no pinned numbers for this CPU ({PINNED.name}): {REGENERATE}"
    lines = PINNED.read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


@pytest.mark.slow
def test_pinned_smoke_runs_give_the_pinned_csvs(tmp_path, data_dir, cifar_dir):
    threads = torch.get_num_threads()
    try:
        for arch, dataset in (("lenet", "mnist"), ("conv2", "cifar10")):
            assert cli.main(["run", arch, dataset, "--preset", str(DATA / "pinned.yaml"),
                             "--threads", "1", "--out", str(tmp_path), "--data-dir",
                             str(data_dir), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    expected = expected_hashes()
    assert sorted(expected) == sorted(f"{arch}_{dataset}_pinned/{name}"
                                      for arch, dataset in (("lenet", "mnist"),
                                                            ("conv2", "cifar10"))
                                      for name in ("summary.csv", "metrics.csv"))
    differ = [name for name, digest in sorted(expected.items())
              if hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() != digest]
    assert not differ, (f"{', '.join(differ)} differ from the pinned numbers in "
                        f"tests/data/{PINNED.name}; if the change is intended, {REGENERATE}")
