#!/usr/bin/env python
"""Build the report: run the notebooks with papermill, render them with nbconvert, write
build/report/index.html (a Jinja2 template) that leads with the paper's claims and verdicts.

    python build.py all [--preset paper|quick|smoke|FILE.yaml] [--jobs N]   every notebook
    python build.py NAME [NAME ...] [options]    some notebooks (see --list), then the report
    python build.py publish [--preset paper]     copy the last build's figures to figures/PRESET/
    python build.py --list | clean               the notebooks and their state | delete build/

A build writes only under build/ (nothing tracked): executed notebooks in build/notebooks/,
figures in build/figures/PRESET/ with build.json (which notebook drew each figure, from which
results folders and parameters, at which commit), the report in build/report/. The committed
figures/PRESET/ change only through `publish`.

Training: presets of the paper's protocol (paper, paper_standardize) read the results on disk as far
as they go and train nothing unless given --train (hours on a GPU, days on a CPU); other presets
(quick, smoke) train what their results lack unless given --no-train.

Incremental: a notebook runs again only if its inputs changed (its source, its parameters, the
lth_utils code and params/claims.yaml, the preset, the results folders it reads) or its outputs
are gone; the inputs' hash is kept in the executed notebook's metadata. Notebooks that read the
same results folder never run at the same time.

Exit status: 0 built, 1 a notebook failed (one message names the notebook and the cell),
2 bad command line, 130 interrupted.
"""
from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
from lth_utils.errors import LTHError  # noqa: E402
from lth_utils.report import Notebook, notebook_record, publish, write_report  # noqa

NOTEBOOKS_DIR = REPO / "notebooks"
# The report's notebooks (notebooks/NAME.ipynb), in the order they run and are shown.
NOTEBOOKS = {
    "early_stopping": Notebook(
        "Early stopping and accuracy vs. pruning (Figures 1 and 4, LeNet)",
        "Early-stopping iteration and test accuracy there as LeNet-300-100 is pruned: winning "
        "tickets (iterative and one-shot) against random reinitialization and random sparse "
        "networks; accuracy at the end of training."),
    "test_accuracy": Notebook(
        "Test accuracy during training (Figure 3, LeNet)",
        "Test accuracy vs. training iteration at Pm = 100, 51.3, 21.1, 7.0, 3.6 and 1.9%, for "
        "winning tickets and for random reinitialization."),
    "conv": Notebook(
        "Conv-2, Conv-4 and Conv-6 on CIFAR-10 (Figure 5)",
        "Early-stopping iteration, test accuracy at early stopping and at the end of training, "
        "for winning tickets and random reinitialization of the three conv nets."),
    "anatomy": Notebook(
        "What a winning ticket looks like (Appendix F, LeNet)",
        "Which input pixels keep their connections, which initial values survive, how far "
        "weights move, and each layer's Pm through the rounds, from committed masks and seeds."),
    "overview": Notebook(
        "Overview: claims, what was run, key numbers",
        "The claims table with each run's deviations from the protocol, what this build ran, "
        "and the key numbers of every network side by side."),
}
# Run in each kernel before the notebook (an IPython startup file): tables are shown whole.
KERNEL_STARTUP = ("import pandas\npandas.set_option('display.max_rows', None)\n"
                  "pandas.set_option('display.max_columns', None)\n")
# What the notebooks run (the report's own code, lth_utils/report.py, is not).
INPUT_CODE = [p for p in sorted((REPO / "lth_utils").glob("*.py")) if p.name != "report.py"] + [
    REPO / "params" / "claims.yaml"]


def digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, default=str).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def declared(name: str) -> dict:
    """The notebook's `parameters` cell, {name: default} (papermill.inspect_notebook)."""
    import papermill as pm
    from nbformat.validator import MissingIDFieldWarning
    with warnings.catch_warnings():  # cells without ids are read as nbformat always did
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        found = pm.inspect_notebook(str(NOTEBOOKS_DIR / f"{name}.ipynb"))
    if not found:
        raise LTHError(f"notebooks/{name}.ipynb has no cell tagged 'parameters'")
    return {k: ast.literal_eval(v["default"]) for k, v in found.items()}


def parse_override(text: str) -> tuple:
    """-p NAME=VALUE, the value read as YAML (numbers, lists, null...)."""
    import yaml
    key, eq, value = text.partition("=")
    if not eq or not key.isidentifier():
        raise LTHError(f"-p expects NAME=VALUE, not {text!r}")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise LTHError(f"-p {key}: {value!r} is not a valid value") from None


class Build:
    """One invocation: its folders, each notebook's parameters and the results it reads."""

    def __init__(self, args):
        from lth_utils.presets import read_preset
        self.args, self.preset = args, str(args.preset)
        self.preset_values = read_preset(self.preset)  # an unknown preset: one line, exit 2
        self.stem = Path(self.preset).stem
        self.dir = Path(args.build_dir).resolve()
        self.results_dir = Path(args.results_dir).resolve()
        self.figures_dir = self.dir / "figures" / self.stem
        self.train = args.train if args.train is not None else not self.stem.startswith("paper")
        self.overrides = dict(parse_override(p) for p in args.param or [])
        self.repo, self._experiments = REPO, {}

    def executed(self, name: str) -> Path:
        return self.dir / "notebooks" / self.stem / f"{name}.ipynb"

    def parameters(self, name: str) -> dict:
        """What papermill passes: the build's values, for the parameters the notebook declares."""
        ours = {"preset": self.preset, "results_dir": str(self.results_dir),
                "figures_dir": str(self.figures_dir), "progress": False, "train": self.train,
                "device": self.args.device, "trials": self.args.trials,
                "threads": self.args.threads, "data_dir": self.args.data_dir,
                "explore": False}  # no one at a batch run to use ipywidgets (nbclient can hang)
        ours = {k: v for k, v in ours.items() if v is not None}
        return {k: v for k, v in {**ours, **self.overrides}.items() if k in declared(name)}

    def experiments(self, name: str) -> list:
        """(folder, hp, strategies) of each experiment the notebook reads; hp is None where
        its parameters do not resolve (the notebook will say why)."""
        if name not in self._experiments:
            self._experiments[name] = self._resolve(name)
        return self._experiments[name]

    def _resolve(self, name: str) -> list:
        from lth_utils.claims_report import run_folders
        from lth_utils.paper import FIGURE_2
        from lth_utils.run_data import hparams
        from lth_utils.store import results_folder
        p = {**declared(name), **self.parameters(name)}
        if "run" in p:  # a notebook of committed files (anatomy): every run of the preset,
            from lth_utils.store import Store  # those the other notebooks train included
            found = {e[0]: e for other in NOTEBOOKS if "run" not in declared(other)
                     for e in self.experiments(other) if e[0] is not None}
            for f in run_folders(self.results_dir, self.stem):
                found.setdefault(f, (f, Store(f).read_hparams(), None))
            return list(found.values())
        archs = p.get("architectures") or ([p["arch"]] if p.get("arch") else list(FIGURE_2))
        found = []
        for arch in [archs] if isinstance(archs, str) else archs:
            try:
                hp = hparams(arch, str(p["preset"]), p.get("trials"), p.get("strategies"))
            except (LTHError, KeyError, TypeError):
                found.append((None, None, None))
                continue
            found.append((results_folder(self.results_dir, hp.arch, hp.dataset, hp.preset), hp,
                          hp.strategies))
        return found

    def folders(self, name: str) -> set:
        return {f for f, _, _ in self.experiments(name) if f is not None}

    def inputs(self, name: str) -> str:
        """The hash of everything the notebook's output depends on."""
        from lth_utils.claims_report import run_folders
        from lth_utils.store import Store
        cells = [[c["cell_type"], "".join(c["source"])] for c in
                 json.loads((NOTEBOOKS_DIR / f"{name}.ipynb").read_text())["cells"]]
        # and the preset's variants' runs (e.g. x/255), which the claims' sensitivity table
        # reads beside the preset's own; not the preset's other folders, which another
        # notebook may be training while this one runs
        variants = set(run_folders(self.results_dir, self.stem, own=False))
        results = [p.read_bytes() for f in sorted(self.folders(name) | variants)
                   for p in Store(f).result_files() if p.is_file()]
        return digest(cells, self.parameters(name), self.preset_values,
                      *[p.read_bytes() for p in INPUT_CODE], *results)

    def stale(self, name: str) -> str:
        """Why the notebook must run again ("" if its last run still holds)."""
        if self.args.force:
            return "--force"
        record = notebook_record(self.executed(name))
        if record is None:
            return "not built yet"
        if record["status"] != "ok":
            return "last run failed"
        if record["inputs"] != self.inputs(name):
            return "source, parameters or inputs changed"
        gone = [f["png"] for f in record["figures"] if not (self.figures_dir / f["png"]).exists()]
        return f"figure {gone[0]} missing" if gone else ""

    def progress(self, name: str) -> str:
        from lth_utils.run_data import folder_status
        return ", ".join(f"{f.name} {s.done}/{s.planned} runs" for f, hp, strategies in
                         self.experiments(name) if hp is not None
                         for s in [folder_status(f, hp)])


def start(build: Build, name: str) -> subprocess.Popen:
    """papermill NAME into build/notebooks/, its log in build/logs/NAME.log."""
    log = build.dir / "logs" / build.stem / f"{name}.log"
    startup = build.dir / "ipython" / "profile_default" / "startup"
    for d in (build.executed(name).parent, log.parent, build.figures_dir, startup):
        d.mkdir(parents=True, exist_ok=True)
    (startup / "00-tables.py").write_text(KERNEL_STARTUP)
    build.executed(name).unlink(missing_ok=True)  # no earlier run can pass for this one
    path = lambda *dirs: os.pathsep.join(filter(None, dirs))  # noqa: E731
    env = {**os.environ, "PYTHONPATH": path(str(REPO), os.environ.get("PYTHONPATH")),
           # the kernel is `python` on PATH: this interpreter, which has lth_utils
           "PATH": path(str(Path(sys.executable).parent), os.environ.get("PATH")),
           "PYDEVD_DISABLE_FILE_VALIDATION": "1", "IPYTHONDIR": str(build.dir / "ipython")}
    cmd = [sys.executable, "-m", "papermill", str(NOTEBOOKS_DIR / f"{name}.ipynb"),
           str(build.executed(name)), "-y", json.dumps(build.parameters(name)),
           "--cwd", str(NOTEBOOKS_DIR), "--kernel", "python3", "--no-progress-bar",
           "--start-timeout", "180"]
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish(build: Build, name: str) -> bool:
    """Whether the notebook ran to the end; if so its inputs' hash goes into its metadata."""
    path = build.executed(name)
    record = notebook_record(path)
    if record and record["status"] == "ok":
        nb = json.loads(path.read_text())
        nb["metadata"]["lth_build"] = {"inputs": build.inputs(name)}
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return bool(record and record["status"] == "ok")


def run(build: Build, names: list) -> int:
    """Execute `names` in table order, up to --jobs at once, never two that read the same
    results folder together; then the manifest and the report."""
    print(f"build: preset {build.preset}, {len(names)} notebook(s), up to {build.args.jobs} "
          f"at once, training {'on' if build.train else 'off'}; report "
          f"{os.path.relpath(build.dir / 'report' / 'index.html')}", flush=True)
    pending, running, failed, said = list(names), {}, [], {}
    try:
        while pending or running:
            for name in [] if failed else list(pending):
                busy = set().union(*[build.folders(n) for n in [*running, *pending[
                    :pending.index(name)]]])
                if len(running) >= build.args.jobs or busy & build.folders(name):
                    continue
                pending.remove(name)
                why = build.stale(name)
                print(f"  {name}: " + (f"executing ({why})" if why else "up to date, not "
                                       "executed"), flush=True)
                if why:
                    running[name] = (start(build, name), time.time())
            if failed and not running:
                break
            time.sleep(0.5)
            for name, (proc, t0) in list(running.items()):
                line = build.progress(name) if int(time.time() - t0) % 5 == 0 else None
                if line and said.get(name) != line:
                    said[name] = line
                    print(f"  {name} [{time.time() - t0:4.0f} s]: {line}", flush=True)
                if proc.poll() is None:
                    continue
                del running[name]
                ok = finish(build, name)
                print(f"  {name}: {'done' if ok else 'FAILED'} in {time.time() - t0:.0f} s",
                      flush=True)
                failed += [] if ok else [name]
    except KeyboardInterrupt:
        for proc, _ in running.values():
            os.killpg(proc.pid, signal.SIGTERM)  # its kernel exits with it
        print("\ninterrupted: finished notebooks and results are kept; the same command "
              "resumes", file=sys.stderr)
        return 130
    index = write_report(build, NOTEBOOKS)
    for name in failed:
        record = notebook_record(build.executed(name)) or {}
        log = build.dir / "logs" / build.stem / f"{name}.log"
        print(f"\nerror: {record.get('failure') or f'notebook {name} failed before any cell ran'}"
              f"\n  kept: {os.path.relpath(build.executed(name))}, log {os.path.relpath(log)}",
              file=sys.stderr)
    print(f"build: {'failed' if failed else 'done'}. Report: {os.path.relpath(index)}",
          file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python build.py", description=__doc__.split("\n\n")[0],
                                epilog=f"notebooks: {', '.join(NOTEBOOKS)}")
    p.add_argument("targets", nargs="*", metavar="TARGET",
                   help="all, notebook names, publish (the last build's figures and "
                        "build.json into the tracked figures/PRESET/, or --to DIR) or clean")
    p.add_argument("--list", action="store_true", help="the notebooks and which would run")
    p.add_argument("--preset", default="paper",
                   help="paper (default: the committed results), quick, smoke, or a .yaml")
    p.add_argument("--jobs", "-j", type=int, default=1, help="notebooks run at once")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--trials", type=int, help="trials (default: the preset's)")
    p.add_argument("--threads", type=int, help="torch CPU threads per notebook")
    p.add_argument("--data-dir", help="datasets (default: $LTH_DATA, else ./data)")
    p.add_argument("--results-dir", default=str(REPO / "results"), help="default: results/")
    p.add_argument("--build-dir", default=str(REPO / "build"), help="default: build/")
    p.add_argument("--to", help="publish into this folder (default: figures/PRESET/)")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="set a notebook parameter (a YAML value), e.g. -p trials=3")
    p.add_argument("--train", action=argparse.BooleanOptionalAction, default=None,
                   help="train what the results lack (default: yes, except for the paper "
                        "protocol's presets)")
    p.add_argument("--force", action="store_true", help="execute even up-to-date notebooks")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.jobs < 1:
            raise LTHError("--jobs must be at least 1")
        build, targets = Build(args), args.targets
        if args.list:
            for name, info in NOTEBOOKS.items():
                why = build.stale(name)
                print(f"  {name:<15} {info.title}\n  {'':<15} "
                      f"{'will execute: ' + why if why else 'up to date'}")
            return 0
        if targets in (["clean"], ["publish"]):
            if targets == ["publish"]:
                return publish(build, Path(args.to or REPO / "figures" / build.stem).resolve())
            shutil.rmtree(build.dir, ignore_errors=True)
            print(f"removed {os.path.relpath(build.dir)} (results/ and figures/ are kept)")
            return 0
        unknown = [t for t in targets if t not in ("all", *NOTEBOOKS)]
        if not targets or unknown:
            raise LTHError((f"unknown target {unknown[0]!r}" if unknown else "nothing to build")
                           + f"; choose all, publish, clean or one of {', '.join(NOTEBOOKS)}")
        names = [n for n in NOTEBOOKS if "all" in targets or n in targets]
        for name in names:
            declared(name)
        return run(build, names)
    except (LTHError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
