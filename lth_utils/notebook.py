"""What every notebook shares: its parameters resolved to folders, the one call that reads (or,
asked to, trains) its experiments and says what each results folder holds, and pandas'
display options.

Each notebook's cell tagged `parameters` holds the same contract (build.py passes these):

    preset = "paper"     # smoke | quick | paper, or a preset .yaml
    train = False        # True: first train what the results folder lacks
    results_dir = None   # None: <repo>/results (the committed paper-protocol runs)
    figures_dir = None   # None: <repo>/build/figures/<preset stem>/ (git-ignored)
    data_dir = None      # None: $LTH_DATA, else <repo>/data (only to train; missing
                         #   files are downloaded there, as `run` does)
    device = "cpu"       # cpu or cuda
    threads = None       # torch CPU threads; None: torch's default
    progress = True      # progress bars while training

followed by `nb = notebook.setup(preset, train, results_dir, ...)`. <repo> is the first folder
whose pyproject.toml is this project's, from the working directory upward (JupyterLab and
papermill run a notebook in notebooks/), else from this package's folder upward.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import run_data
from .errors import LTHError
from .store import results_folder

PROJECT_LINE = 'name = "lottery-ticket"'
def find_repo(start=None) -> Path | None:
    """The repository's root above `start` (default: the working directory), else above this
    package; None when neither is inside a checkout of this project."""
    for base in (Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent):
        for folder in (base, *base.parents):
            toml = folder / "pyproject.toml"
            if toml.is_file() and PROJECT_LINE in toml.read_text(errors="replace"):
                return folder
    return None


@dataclass(frozen=True)
class Notebook:
    """A notebook's resolved parameters: absolute folders, and whether to train."""
    preset: str
    train: bool
    results_dir: Path
    figures_dir: Path
    data_dir: Path
    device: str
    threads: int | None
    progress: bool

    def experiment(self, arch: str, strategies=None, trials: int | None = None):
        """The `run_data.Results` of `arch` under this preset (only `strategies` and `trials`
        if given), as far as its folder goes: empty if it has none. With `train`, what the
        folder lacks is trained first (finished networks never again). LTHError: bad
        parameters, or training needed and the data neither there nor downloadable."""
        hp = run_data.hparams(arch, self.preset, trials, strategies)
        folder = results_folder(self.results_dir, hp.arch, hp.dataset, hp.preset)
        if self.train and not run_data.complete(folder, hp):
            from .experiment import Experiment
            from .provenance import provenance
            Experiment(hp, self.results_dir, self.data_dir, self.device).run(
                self.progress, provenance(self.device, "stacked"), wait=True)
        return run_data.load_results(folder, hp)

    def experiments(self, architectures, strategies=None, trials: int | None = None) -> dict:
        """`experiment` for each architecture; shows, in words, what each folder holds and
        lacks (`run_data.describe_run`), and returns {arch: Results} of those with results."""
        if isinstance(architectures, str):
            architectures = [architectures]
        runs = {arch: self.experiment(arch, strategies, trials) for arch in architectures}
        lines = [run_data.describe_run(r).sentence() for r in runs.values()]
        partial = any(not run_data.complete(r.folder, r.hp) for r in runs.values())
        if partial and not self.train:
            lines.append("With `train = False` each folder is read as it is; `train = True` "
                         "trains what it lacks (README, Presets, says how long each takes).")
        show_markdown("\n".join(f"* {line}" for line in lines))
        return {arch: r for arch, r in runs.items() if not r.empty}


def setup(preset="paper", train=False, results_dir=None, figures_dir=None, data_dir=None,
          device="cpu", threads=None, progress=True, start=None) -> Notebook:
    """Resolve a notebook's parameters (the contract above; relative paths are from the
    working directory), set torch's threads and pandas' display, and show an LTHError raised
    in a cell as one line. LTHError: bad `train` or `threads`, or a default folder needed and
    no repository found from `start`."""
    if not isinstance(train, bool):
        raise LTHError(f"train must be True or False, not {train!r}")
    repo = find_repo(start)

    def folder(given, *default) -> Path:
        if given:
            return Path(given).expanduser().resolve()
        if repo is None:
            raise LTHError(f"no lottery-ticket repository above {Path(start or Path.cwd())}: "
                           f"set results_dir and figures_dir in the parameters cell")
        return repo.joinpath(*default)

    data = data_dir or os.environ.get("LTH_DATA") or (repo or Path.cwd()) / "data"
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise LTHError(f"threads must be a whole number of at least 1, not {threads!r}")
        import torch
        torch.set_num_threads(threads)
    show_tables_whole()
    one_line_errors()
    return Notebook(str(preset), train, folder(results_dir, "results"),
                    folder(figures_dir, "build", "figures", Path(str(preset)).stem),
                    Path(data).expanduser().resolve(), str(device), threads, bool(progress))


def show_tables_whole() -> None:
    """pandas shows every row and column of a table (a per-round table has up to 95 rows)."""
    for option in ("display.max_rows", "display.max_columns"):
        pd.set_option(option, None)


def one_line_errors() -> None:
    """In IPython, an LTHError (bad input, said in words) shows as one line, not a traceback;
    the cell still fails (papermill and build.py see the error)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def handler(shell, etype, value, tb, tb_offset=None):
        stb = [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, stb)  # what IPython shows a traceback with
        return stb

    shell.set_custom_exc((LTHError,), handler)


def show_markdown(text: str) -> None:
    """`text` as Markdown in a notebook, else printed."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display(Markdown(text))
