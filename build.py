#!/usr/bin/env python
"""Build the report: run the notebooks with papermill, render them, write build/report/.

    python build.py all [--preset quick|smoke] [--jobs N]   every notebook, then the report
    python build.py all --preset paper                       the report of the committed results
    python build.py all --preset paper --train               ... training what is missing
    python build.py NAME [NAME ...] [options]                      some notebooks, then the report
    python build.py --list                                         the notebooks and their state
    python build.py clean                                          delete the build folder

Each notebook (notebooks/NAME.ipynb) is executed by papermill with the build's parameters into
build/notebooks/NAME.ipynb, rendered to build/report/NAME.html by nbconvert, and its figures
(written to figures/ as PNG and SVG) are copied to build/report/figures/ and shown inline in
build/report/index.html with the parameters and provenance of the build. Figures go to
figures/PRESET/, with build.json beside them: the commit, the parameters and the results
folders (and how many runs each held) that drew them.

Training: the quick and smoke presets train what their results lack; the paper preset reads the
results on disk (the committed ones) as far as they go and trains nothing unless --train is
given (its runs take hours on a GPU, days on a CPU).

Incremental: a notebook is executed again only if its source, its parameters, the plotting,
analysis and claims helpers (and params/claims.yaml), the preset or its inputs (the results folders it reads) changed, or one of its
outputs is missing; the hash of all these is stored beside the executed notebook. Results are
never deleted here: the notebooks resume experiments and skip finished runs.

A failing notebook stops the build (notebooks already running finish): the message names the
notebook, the failing cell and the error; the executed notebook is kept; the report marks it.
Exit status: 0 built, 1 a notebook failed, 2 bad command line, 130 interrupted.
"""
from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import html
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
NOTEBOOKS_DIR = REPO / "notebooks"
# What the notebooks' output depends on besides their source and results (the overview's
# claims table reads claims.py and params/claims.yaml).
HELPERS = [REPO / "lth_utils" / "analysis.py", REPO / "lth_utils" / "plotting.py",
           REPO / "lth_utils" / "strategies.py",
           REPO / "lth_utils" / "claims.py", REPO / "params" / "claims.yaml"]
STATE_FORMAT = "lth-build-state/1"

# The report's notebooks, in report order; each runs after those listed in `after`.
NOTEBOOKS = {
    "overview": {
        "title": "Overview: claims, what was run, key numbers",
        "blurb": "The paper's quantitative claims checked on this build's results (holds, "
                 "does not hold, not run), what this build ran (parameters, trials, device, "
                 "wall time) and the key numbers of every network side by side.",
        "after": ["early_stopping", "test_accuracy", "conv"],
    },
    "early_stopping": {
        "title": "Early stopping and accuracy vs. pruning (Figures 1 and 4, LeNet)",
        "blurb": "Early-stopping iteration and test accuracy at that iteration as LeNet-300-100 "
                 "is pruned: winning tickets (iterative and one-shot) against random "
                 "reinitialization and random sparse networks; accuracy at the end of training.",
        "after": [],
    },
    "test_accuracy": {
        "title": "Test accuracy during training (Figure 3, LeNet)",
        "blurb": "Test accuracy vs. training iteration at Pm = 100, 51.3, 21.1, 7.0, 3.6 and "
                 "1.9%, for winning tickets and for random reinitialization.",
        "after": ["early_stopping"],  # shares LeNet's results folder: never run both at once
    },
    "conv": {
        "title": "Conv-2, Conv-4 and Conv-6 on CIFAR-10 (Figure 5)",
        "blurb": "Early-stopping iteration, test accuracy at early stop and at the end of "
                 "training, and training accuracy, for winning tickets and random "
                 "reinitialization of the three conv nets.",
        "after": [],
    },
}
EXECUTION_ORDER = ["early_stopping", "test_accuracy", "conv", "overview"]


class BuildError(Exception):
    """Bad command-line input: one line on stderr, exit status 2."""


# --- small helpers ------------------------------------------------------------------------

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hash(path: Path) -> str | None:
    return sha256(path.read_bytes()) if path.is_file() else None


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def rel(path: Path) -> str:
    """`path` relative to the current folder when inside it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def git_commit() -> str:
    """The commit the report was built from, short, saying whether tracked files differ."""
    from lth_utils.provenance import git_commit as commit
    sha = commit()
    if sha == "unknown":
        return "unknown (not a git checkout)"
    return sha[:12] + (" (with uncommitted changes)" if sha.endswith("+dirty") else "")


# --- notebooks and their parameters ----------------------------------------------------------

def notebook_path(name: str) -> Path:
    return NOTEBOOKS_DIR / f"{name}.ipynb"


def read_notebook(name: str) -> dict:
    return json.loads(notebook_path(name).read_text())


def default_parameters(name: str) -> dict:
    """The literal assignments of the notebook's cell tagged `parameters`."""
    for cell in read_notebook(name)["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"])
            values = {}
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                        and isinstance(node.targets[0], ast.Name):
                    try:
                        values[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
            return values
    raise BuildError(f"notebooks/{name}.ipynb has no cell tagged 'parameters'")


def source_hash(name: str) -> str:
    """The notebook's code and text, not its outputs (a notebook saved from JupyterLab with
    outputs is the same source)."""
    cells = [[c["cell_type"], "".join(c["source"])] for c in read_notebook(name)["cells"]]
    return sha256(json.dumps(cells).encode())


def parse_override(text: str) -> tuple:
    """-p KEY=VALUE, VALUE read as YAML (numbers, lists, null...)."""
    import yaml
    if "=" not in text:
        raise BuildError(f"-p expects KEY=VALUE, not {text!r}")
    key, value = text.split("=", 1)
    if not key.isidentifier():
        raise BuildError(f"-p: {key!r} is not a parameter name")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise BuildError(f"-p {key}: {value!r} is not a valid value") from None


class Build:
    """One invocation: the paths, the parameters and the state of each notebook."""

    def __init__(self, args):
        self.args = args
        self.build_dir = Path(args.build_dir).resolve()
        self.results_dir = Path(args.results_dir).resolve()
        self.train = args.train if args.train is not None else args.preset != "paper"
        figures = args.figures_dir or REPO / "figures" / Path(str(args.preset)).stem
        self.figures_dir = Path(figures).resolve()
        data = args.data_dir or os.environ.get("LTH_DATA") or REPO / "data"
        self.data_dir = Path(data).resolve()
        self.out_dir = self.build_dir / "notebooks"
        self.report_dir = self.build_dir / "report"
        self.log_dir = self.build_dir / "logs"
        self.overrides = dict(parse_override(p) for p in (args.param or []))
        self.started, self.started_at = time.time(), now()
        self.outcome = {}  # name -> this build's status

    # parameters and inputs
    def parameters(self, name: str) -> dict:
        defaults = default_parameters(name)
        params = {"preset": self.args.preset, "results_dir": str(self.results_dir),
                  "figures_dir": str(self.figures_dir), "data_dir": str(self.data_dir),
                  "device": self.args.device, "progress": False}
        if self.args.trials is not None:
            params["trials"] = self.args.trials
        if self.args.threads is not None:
            params["threads"] = self.args.threads
        if not self.train:
            params["train"] = False
        if "build_dir" in defaults:
            params["build_dir"] = str(self.build_dir)
        params.update(self.overrides)
        return {k: v for k, v in params.items() if k in defaults or k in self.overrides}

    def effective(self, name: str) -> dict:
        return {**default_parameters(name), **self.parameters(name)}

    def experiments(self, name: str) -> list:
        """(arch, results folder, hp or None, strategies) of each experiment a notebook reads;
        hp is None where the parameters do not resolve (the notebook will say why)."""
        p = self.effective(name)
        archs = p.get("architectures") or []
        if isinstance(archs, str):
            archs = [archs]
        found = []
        try:
            from lth_utils import resolve
            from lth_utils.store import results_folder
        except ImportError:
            return [(a, None, None, None) for a in archs]
        for arch in archs:
            try:
                hp = resolve(str(arch), None, str(p.get("preset")), trials=p.get("trials"))
            except Exception:  # bad parameters: the notebook fails and says why
                found.append((arch, None, None, None))
                continue
            strategies = p.get("strategies") or list(hp.strategies)
            strategies = ["winning_ticket"] + [s for s in hp.strategies
                                               if s in strategies and s != "winning_ticket"]
            folder = results_folder(p.get("results_dir", self.results_dir), hp.arch, hp.dataset,
                                    hp.preset)
            found.append((arch, folder, hp, strategies))
        return found

    def preset_file(self, preset) -> Path | None:
        path = Path(str(preset))
        if path.suffix in (".yaml", ".yml"):
            return path
        return REPO / "params" / f"{preset}.yaml"

    def input_hash(self, name: str) -> str:
        h = hashlib.sha256()
        params = self.parameters(name)
        h.update(source_hash(name).encode())
        h.update(json.dumps(params, sort_keys=True, default=str).encode())
        for helper in HELPERS:
            h.update(str(file_hash(helper)).encode())
        preset = self.preset_file(self.effective(name).get("preset"))
        h.update(str(preset and file_hash(preset)).encode())
        for arch, folder, hp, _ in self.experiments(name):
            h.update(f"|{arch}|{folder}".encode())
            if folder is None:
                continue
            from lth_utils.store import Store
            for path in Store(folder).result_files():
                h.update(str(file_hash(path)).encode())
            h.update(json.dumps(science(folder), sort_keys=True, default=str).encode())
        for other in NOTEBOOKS[name]["after"] if name == "overview" else []:
            state = self.state(other) or {}
            h.update(f"|{other}|{state.get('hash')}|{state.get('executed_at')}".encode())
        return h.hexdigest()

    # state on disk
    def state_path(self, name: str) -> Path:
        return self.out_dir / f"{name}.state.json"

    def state(self, name: str) -> dict | None:
        state = read_json(self.state_path(name))
        return state if isinstance(state, dict) and state.get("format") == STATE_FORMAT else None

    def up_to_date(self, name: str) -> tuple:
        """(True, "") if the last execution of `name` still holds, else (False, why)."""
        if self.args.force:
            return False, "--force"
        state = self.state(name)
        if not state or state.get("status") != "ok":
            return False, "not built yet" if not state else "last build failed"
        if state.get("hash") != self.input_hash(name):
            return False, "source, parameters or inputs changed"
        for f in state.get("figures", []):
            for key in ("png", "svg"):
                if file_hash(self.figures_dir / f[key]) != f.get(f"{key}_sha256"):
                    return False, f"figure {f[key]} missing or changed"
        if not (self.out_dir / f"{name}.ipynb").exists():
            return False, "executed notebook missing"
        if not (self.report_dir / f"{name}.html").exists():
            return False, "rendered notebook missing"
        return True, ""


def science(folder: Path) -> dict | None:
    """The parameters in a results folder's params.yaml that change its numbers (not the
    provenance, trials or strategies, which a resumed run may rewrite)."""
    from lth_utils.errors import LTHError
    from lth_utils.store import Store
    store = Store(folder)
    if not store.has_params:
        return None
    try:
        return store.read_hparams().science()
    except LTHError:
        return {"unreadable": file_hash(folder / "params.yaml")}


# --- executing one notebook (in a child process) -----------------------------------------------

def child(spec_path: str) -> int:
    """Run by the build in a fresh process: execute one notebook with papermill, write the
    outcome as JSON (papermill's own traceback goes to the log)."""
    spec = json.loads(Path(spec_path).read_text())
    import papermill as pm
    result = {"ok": True}
    try:
        pm.execute_notebook(spec["input"], spec["output"], parameters=spec["parameters"],
                            kernel_name="python3", progress_bar=False, log_output=False,
                            cwd=spec["cwd"], start_timeout=180)
    except pm.PapermillExecutionError as e:
        result = {"ok": False, "ename": e.ename, "evalue": e.evalue,
                  "exec_count": e.exec_count, "cell_index": e.cell_index}
    except Exception as e:  # kernel died, missing kernel, unreadable notebook...
        result = {"ok": False, "ename": type(e).__name__, "evalue": str(e)}
    write_json(Path(spec["result"]), result)
    return 0


def failure_details(executed: Path, result: dict) -> dict:
    """The failing cell of an executed notebook: its number, its first lines, the error."""
    details = {"ename": result.get("ename") or "Error", "evalue": result.get("evalue") or "",
               "cell": None, "execution_count": result.get("exec_count"), "source": ""}
    try:
        nb = json.loads(executed.read_text())
    except (OSError, ValueError):
        return details
    code_cells = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        code_cells += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                details.update(ename=out.get("ename", details["ename"]),
                               evalue=out.get("evalue", details["evalue"]),
                               cell=code_cells, execution_count=cell.get("execution_count"),
                               source="".join(cell["source"]))
                return details
    return details


def failure_message(name: str, d: dict) -> str:
    where = f"code cell {d['cell']}" if d.get("cell") else "before any cell ran"
    if d.get("execution_count"):
        where += f" (In [{d['execution_count']}])"
    evalue = d["evalue"].strip().splitlines()
    lines = [f"notebook {name} failed in {where}: {d['ename']}: "
             f"{evalue[0] if evalue else ''}".rstrip(": ")]
    source = [ln for ln in d.get("source", "").splitlines() if ln.strip()]
    if source:
        lines.append("  the cell: " + source[0].strip() + (" ..." if len(source) > 1 else ""))
    return "\n".join(lines)


# --- progress -------------------------------------------------------------------------------

def experiment_progress(folder: Path, hp, strategies) -> tuple:
    """(finished, planned) networks of one experiment, as its results store counts them."""
    from lth_utils.analysis import run_status
    status = run_status(folder, hp, strategies)
    return status.done, status.planned


# --- the build --------------------------------------------------------------------------------

class Job:
    def __init__(self, name, build: Build):
        self.name, self.build = name, build
        self.executed = build.out_dir / f"{name}.ipynb"
        self.result = build.out_dir / f".{name}.result.json"
        self.log = build.log_dir / f"{name}.log"
        self.proc = None
        self.started = None
        self.last_progress = None

    def start(self):
        b = self.build
        for d in (b.out_dir, b.log_dir, b.results_dir, b.figures_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.result.unlink(missing_ok=True)
        spec = {"input": str(notebook_path(self.name)), "output": str(self.executed),
                "parameters": b.parameters(self.name), "cwd": str(NOTEBOOKS_DIR),
                "result": str(self.result)}
        spec_path = b.out_dir / f".{self.name}.spec.json"
        write_json(spec_path, spec)
        env = dict(os.environ)
        # The kernel is `python` on PATH: make it this interpreter, which has lth_utils.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()),
                                          "_child", str(spec_path)], cwd=REPO, env=env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def stop(self):
        """End the runner and its kernel (their own process group, started above)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def progress(self) -> str | None:
        parts = []
        for arch, folder, hp, strategies in self.build.experiments(self.name):
            if hp is None:
                continue
            done, total = experiment_progress(folder, hp, strategies)
            parts.append(f"{folder.name} {done}/{total} runs")
        return ", ".join(parts) or None


def run_build(build: Build, names: list) -> int:
    """Execute `names` (in dependency order, up to --jobs at once), render, write the report."""
    jobs_n = max(1, build.args.jobs)
    todo = [n for n in EXECUTION_ORDER if n in names]
    print(f"build: preset {build.args.preset}, {len(todo)} notebook(s), up to {jobs_n} at once; "
          f"results {rel(build.results_dir)}, figures {rel(build.figures_dir)}, "
          f"report {rel(build.report_dir / 'index.html')}", flush=True)
    pending, running, failed = list(todo), [], []
    interrupted = False
    try:
        while pending or running:
            # start what may start: nothing new once a notebook failed
            for name in list(pending):
                if failed or len(running) >= jobs_n:
                    break
                waits = [d for d in NOTEBOOKS[name]["after"] if d in pending or
                         any(j.name == d for j in running)]
                if waits:
                    continue
                pending.remove(name)
                fresh, why = build.up_to_date(name)
                if fresh:
                    build.outcome[name] = "up to date"
                    print(f"  {name}: up to date, not executed", flush=True)
                    continue
                job = Job(name, build)
                print(f"  {name}: executing ({why})", flush=True)
                job.start()
                running.append(job)
            if failed and not running:
                break
            time.sleep(0.5)
            for job in list(running):
                line = job.progress()
                if line and line != job.last_progress:
                    job.last_progress = line
                    print(f"  {job.name} [{time.time() - job.started:4.0f} s]: {line}", flush=True)
                if job.proc.poll() is None:
                    continue
                running.remove(job)
                if not finish(build, job):
                    failed.append(job.name)
    except KeyboardInterrupt:
        interrupted = True
        for job in running:
            job.stop()
            build.outcome[job.name] = "interrupted"
    for name in pending:
        build.outcome.setdefault(name, "not run (build stopped)" if (failed or interrupted)
                                 else "not run")
    index = write_report(build)
    if any(status == "executed" for status in build.outcome.values()):
        write_figures_manifest(build)
    wall = time.time() - build.started
    if interrupted:
        print(f"\ninterrupted after {wall:.0f} s: finished notebooks and results are kept; "
              f"the same command resumes. Report: {rel(index)}", file=sys.stderr)
        return 130
    if failed:
        for name in failed:
            state = build.state(name) or {}
            print("\nerror: " + failure_message(name, state.get("failure", {})), file=sys.stderr)
            print(f"  executed notebook kept: {rel(build.out_dir / (name + '.ipynb'))} "
                  f"(rendered: {rel(build.report_dir / (name + '.html'))}; "
                  f"log: {rel(build.log_dir / (name + '.log'))})", file=sys.stderr)
        print(f"  the report marks the failure: {rel(index)}", file=sys.stderr)
        return 1
    print(f"build: done in {wall:.0f} s. Report: {rel(index)}", flush=True)
    return 0


def finish(build: Build, job: Job) -> bool:
    """Record a finished notebook: render it, collect its figures, store its state."""
    name, wall = job.name, time.time() - job.started
    result = read_json(job.result) or {
        "ok": False, "ename": "BuildError",
        "evalue": f"the notebook runner exited with status {job.proc.returncode}; "
                  f"see {rel(job.log)}"}
    state = {"format": STATE_FORMAT, "name": name, "executed_at": now(),
             "figures_dir": str(build.figures_dir),
             "wall_s": round(wall, 1), "parameters": build.parameters(name),
             "effective_parameters": build.effective(name)}
    render_error = None
    if job.executed.exists():
        try:
            render(job.executed, build.report_dir / f"{name}.html")
        except Exception as e:  # noqa: BLE001 (any rendering problem is reported, not fatal)
            render_error = f"{type(e).__name__}: {e}"
    if result.get("ok") and render_error:
        result = {"ok": False, "ename": "RenderError", "evalue": render_error}
    if result.get("ok"):
        figures = collect_figures(job.executed, build)
        # Figures this notebook drew last time but not now (a preset with fewer rounds) go:
        # figures/ holds what the latest build shows, nothing stale.
        last = build.state(name) or {}
        same_folder = last.get("figures_dir", str(build.figures_dir)) == str(build.figures_dir)
        before = {f["name"]: f for f in last.get("figures", [])} if same_folder else {}
        for gone in set(before) - {f["name"] for f in figures}:
            for key in ("png", "svg"):
                (build.figures_dir / before[gone][key]).unlink(missing_ok=True)
                (build.report_dir / "figures" / before[gone][key]).unlink(missing_ok=True)
        state.update(status="ok", hash=build.input_hash(name), figures=figures)
        build.outcome[name] = "executed"
        print(f"  {name}: done in {wall:.0f} s, {len(figures)} figure(s)", flush=True)
    else:
        details = failure_details(job.executed, result)
        state.update(status="failed", failure=details,
                     figures=collect_figures(job.executed, build))
        build.outcome[name] = "failed"
        print(f"  {name}: FAILED after {wall:.0f} s", flush=True)
    write_json(build.state_path(name), state)
    return bool(result.get("ok"))


def write_figures_manifest(build: Build) -> None:
    """figures/PRESET/build.json: what drew the figures in that folder (the commit, each
    notebook's parameters, and the results folders it read with how many runs they held)."""
    from lth_utils.store import Store
    def repo_path(value):
        return os.path.relpath(Path(value).resolve(), REPO) if isinstance(value, (str, Path)) \
            else value
    notebooks = {}
    for name in NOTEBOOKS:
        state = build.state(name) or {}
        if state.get("status") != "ok" or state.get("figures_dir") != str(build.figures_dir):
            continue
        params = {k: repo_path(v) if k.endswith("_dir") else v
                  for k, v in state.get("effective_parameters", {}).items()}
        results = {}
        for arch, folder, hp, strategies in build.experiments(name):
            if hp is not None and Store(folder).has_results:
                done, total = experiment_progress(folder, hp, strategies)
                results[repo_path(folder)] = {"runs": done, "of": total}
        notebooks[name] = {"executed_at": state["executed_at"], "parameters": params,
                           "results": results, "figures": [f["name"] for f in state["figures"]]}
    write_json(build.figures_dir / "build.json",
               {"preset": build.args.preset, "git": git_commit(), "device": build.args.device,
                "notebooks": notebooks})


def collect_figures(executed: Path, build: Build) -> list:
    """The figures a notebook showed through lth_utils.plotting.save_figure, in order."""
    try:
        nb = json.loads(executed.read_text())
    except (OSError, ValueError):
        return []
    figures, seen = [], set()
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get("lth_figure")
            if not meta or meta["name"] in seen:
                continue
            seen.add(meta["name"])
            entry = dict(meta)
            for key in ("png", "svg"):
                entry[f"{key}_sha256"] = file_hash(build.figures_dir / meta[key])
            figures.append(entry)
    return figures


def render(executed: Path, html_path: Path) -> None:
    """The executed notebook as a standalone HTML page (nbconvert's lab template)."""
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    # Long lines in code and outputs wrap instead of overflowing the page.
    body = body.replace("</head>", WRAP_CSS + "</head>", 1)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body)


WRAP_CSS = """<style>
.jp-InputArea-editor pre, .jp-OutputArea-output pre, .highlight pre
  { white-space: pre-wrap; word-break: break-word; }
.jp-RenderedHTMLCommon table { display: block; overflow-x: auto; max-width: 100%; }
.jp-RenderedImage img { max-width: 100%; height: auto; }
body { max-width: 1200px; margin: 0 auto; }
</style>
"""


# --- the report -------------------------------------------------------------------------------

REPORT_CSS = """
body { font: 16px/1.55 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif;
       color: #1d2430; background: #f6f7f9; margin: 0; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 60px; background: #fff;
       box-shadow: 0 0 0 1px #e3e6eb; min-height: 100vh; box-sizing: border-box; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 22px; margin: 40px 0 6px; padding-top: 18px; border-top: 1px solid #e3e6eb; }
h3 { font-size: 16px; margin: 22px 0 8px; color: #3a4556; }
a { color: #1f5fbf; }
.sub { color: #5b6778; margin: 0 0 18px; }
.banner { padding: 12px 16px; border-radius: 6px; margin: 18px 0; }
.banner.ok { background: #e9f6ec; border: 1px solid #9fd3ab; }
.banner.failed { background: #fdecec; border: 1px solid #f0a3a3; }
.banner.partial { background: #fff6e0; border: 1px solid #f0d08a; }
table { border-collapse: collapse; font-size: 14px; margin: 8px 0; }
th, td { text-align: left; padding: 5px 12px 5px 0; border-bottom: 1px solid #eceef1;
         vertical-align: top; }
th { color: #5b6778; font-weight: 600; }
td code, li code, p code { font-size: 13px; background: #f2f4f7; padding: 1px 4px;
                           border-radius: 3px; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 2px 8px;
         border-radius: 10px; vertical-align: middle; margin-left: 6px; }
.badge.executed, .badge.up-to-date { background: #e9f6ec; color: #1e6b32; }
.badge.failed { background: #fdecec; color: #a11b1b; }
.badge.not-run, .badge.interrupted, .badge.earlier { background: #eef0f3; color: #4b5565; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceef1; border-radius: 4px; }
figcaption { font-size: 14px; color: #3a4556; margin-top: 6px; }
figcaption .files { color: #7a8597; font-size: 13px; }
pre { background: #f6f8fa; padding: 10px 12px; border-radius: 4px; white-space: pre-wrap;
      word-break: break-word; font-size: 13px; }
.error pre { background: #fff4f4; border: 1px solid #f3c4c4; }
details summary { cursor: pointer; color: #3a4556; margin: 6px 0; }
.toc li { margin: 3px 0; }
footer { margin-top: 40px; color: #7a8597; font-size: 13px; }
"""


def esc(value) -> str:
    return html.escape(str(value))


def write_report(build: Build) -> Path:
    """build/report/index.html: every notebook, its status, parameters and figures inline."""
    report = build.report_dir
    (report / "figures").mkdir(parents=True, exist_ok=True)
    sections, toc, statuses = [], [], {}
    for name, info in NOTEBOOKS.items():
        state = build.state(name)
        status = build.outcome.get(name)
        if status is None:
            status = "earlier" if state else "not run"
        if state and status in ("up to date", "earlier") and state.get("status") == "failed":
            status = "failed"
        statuses[name] = status
        sections.append(report_section(build, name, info, state, status))
        badge = status_label(status, state)
        toc.append(f'<li><a href="#{name}">{esc(info["title"])}</a>'
                   f'<span class="badge {css_status(status)}">{esc(badge)}</span></li>')
    failed = [n for n, s in statuses.items() if s == "failed"]
    missing = [n for n, s in statuses.items() if s in ("not run", "not run (build stopped)",
                                                       "interrupted")]
    if failed:
        banner = ("failed", f"The build failed: {', '.join(failed)} did not complete "
                            f"(details in its section below). Other results are kept.")
    elif missing:
        banner = ("partial", f"Not (yet) built: {', '.join(missing)}.")
    else:
        banner = ("ok", "Every notebook ran to the end; all figures below come from this "
                        "build's results.")
    wall = time.time() - build.started
    prov = [("preset", f"<code>{esc(build.args.preset)}</code>"),
            ("git commit", f"<code>{esc(git_commit())}</code>"),
            ("device", esc(build.args.device)),
            ("started", esc(build.started_at)),
            ("wall time (this build)", f"{wall:.0f} s"),
            ("results folder", f"<code>{esc(build.results_dir)}</code>"),
            ("data folder", f"<code>{esc(build.data_dir)}</code>"),
            ("python", esc(platform.python_version())),
            ("torch", esc(torch_version())),
            ("machine", esc(f"{platform.machine()}, {os.cpu_count()} CPU core(s)"))]
    if build.overrides:
        prov.append(("parameter overrides", "<code>" + esc(", ".join(
            f"{k}={v!r}" for k, v in build.overrides.items())) + "</code>"))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lottery Ticket Hypothesis: report ({esc(build.args.preset)})</title>
<style>{REPORT_CSS}</style></head>
<body><main>
<h1>The Lottery Ticket Hypothesis: reproduction report</h1>
<p class="sub">Frankle &amp; Carbin, <em>The Lottery Ticket Hypothesis: Finding Sparse, Trainable
Neural Networks</em>, ICLR 2019 (<a href="https://arxiv.org/abs/1803.03635">arXiv 1803.03635</a>).
Every figure is regenerated from this repository's results by <code>python build.py all</code>.</p>
<div class="banner {banner[0]}">{esc(banner[1])}</div>
<div class="table-wrap"><table>{''.join(f'<tr><th>{k}</th><td>{v}</td></tr>' for k, v in prov)}
</table></div>
<h3>Notebooks</h3>
<ol class="toc">{''.join(toc)}</ol>
{''.join(sections)}
<footer>Written by <code>build.py</code> at {esc(now())}. Figures are the notebooks' PNGs
(click for the SVG). Lines are means over trials; error bars span the minimum and maximum
trial.</footer>
</main></body></html>
"""
    index = report / "index.html"
    tmp = report / ".index.html.tmp"
    tmp.write_text(page)
    os.replace(tmp, index)
    write_json(build.build_dir / "build.json",
               {"started": build.started_at, "preset": build.args.preset,
                "device": build.args.device, "git": git_commit(), "statuses": statuses,
                "wall_s": round(wall, 1)})
    return index


def torch_version() -> str:
    try:
        from importlib.metadata import version
        return version("torch")
    except Exception:  # noqa: BLE001
        return "?"


def css_status(status: str) -> str:
    return {"executed": "executed", "up to date": "up-to-date", "failed": "failed",
            "earlier": "earlier", "interrupted": "interrupted"}.get(status, "not-run")


def status_label(status: str, state) -> str:
    wall = f", {state['wall_s']:.0f} s" if state and state.get("wall_s") is not None else ""
    return {"executed": f"executed{wall}", "up to date": f"up to date{wall}",
            "failed": "FAILED", "earlier": f"from an earlier build{wall}",
            "interrupted": "interrupted"}.get(status, status)


def report_section(build: Build, name: str, info: dict, state, status: str) -> str:
    parts = [f'<section id="{name}"><h2>{esc(info["title"])}'
             f'<span class="badge {css_status(status)}">{esc(status_label(status, state))}'
             f'</span></h2><p>{esc(info["blurb"])}</p>']
    html_page = build.report_dir / f"{name}.html"
    links = []
    if html_page.exists() and state:
        links.append(f'<a href="{name}.html">the executed notebook</a>')
    if (build.out_dir / f"{name}.ipynb").exists() and state:
        links.append(f'<a href="../notebooks/{name}.ipynb">{name}.ipynb</a>')
    if links:
        parts.append(f"<p>Open {' or '.join(links)}"
                     f"{' (executed ' + esc(state['executed_at']) + ')' if state else ''}.</p>")
    if status == "failed" and state and state.get("failure"):
        d = state["failure"]
        parts.append('<div class="banner failed error"><strong>This notebook failed.</strong> '
                     f'{esc(failure_message(name, d).splitlines()[0])}'
                     + (f"<pre>{esc(d.get('source', ''))}</pre>" if d.get("source") else "")
                     + "<p>The executed notebook is kept with the error in place; fix the cause "
                       "and run the build again.</p></div>")
    elif status == "not run":
        parts.append(f'<div class="banner partial">Not built yet: <code>python build.py '
                     f'{name}</code> (or <code>all</code>) builds it.</div>')
    elif status.startswith("not run") or status == "interrupted":
        parts.append(f'<div class="banner partial">Not executed: the build stopped '
                     f'({esc(status)}) before this notebook ran.</div>')
    earlier = (state or {}).get("effective_parameters", {}).get("preset")
    if state and status in ("earlier", "up to date") and earlier != build.args.preset:
        parts.append(f'<div class="banner partial">From an earlier build with preset '
                     f'<code>{esc(earlier)}</code>, not <code>{esc(build.args.preset)}</code>: '
                     f'<code>python build.py {name} --preset {esc(build.args.preset)}</code> '
                     f'rebuilds it.</div>')
    if state and state.get("effective_parameters"):
        rows = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(json.dumps(v))}</code></td></tr>"
                       for k, v in state["effective_parameters"].items())
        parts.append(f"<details><summary>Parameters</summary><div class='table-wrap'>"
                     f"<table>{rows}</table></div></details>")
    folder = Path((state or {}).get("figures_dir", build.figures_dir))
    for fig in (state or {}).get("figures", []):
        parts.append(report_figure(build, fig, folder))
    parts.append("</section>")
    return "\n".join(parts)


def report_figure(build: Build, fig: dict, folder: Path) -> str:
    copied = {}
    for key in ("png", "svg"):
        src = folder / fig[key]
        if src.is_file():
            shutil.copy2(src, build.report_dir / "figures" / fig[key])
            copied[key] = f"figures/{fig[key]}"
    if "png" not in copied:
        return (f'<div class="banner partial">Figure <code>{esc(fig["name"])}</code> is missing '
                f'from {esc(folder)}; rebuild to regenerate it.</div>')
    target = copied.get("svg", copied["png"])
    caption = esc(fig.get("caption") or fig["name"])
    return (f'<figure id="fig-{esc(fig["name"])}"><a href="{target}">'
            f'<img src="{copied["png"]}" alt="{caption}" loading="lazy"></a>'
            f'<figcaption>{caption} <span class="files">({esc(fig["name"])}: '
            f'<a href="{copied["png"]}">PNG</a>'
            + (f', <a href="{copied["svg"]}">SVG</a>' if "svg" in copied else "")
            + ")</span></figcaption></figure>")


# --- command line --------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python build.py",
        description="Run the notebooks (papermill), render them (nbconvert) and write "
                    "build/report/index.html.",
        epilog="targets: all (every notebook), clean (delete the build folder), or notebook "
               f"names: {', '.join(NOTEBOOKS)}")
    p.add_argument("targets", nargs="*", metavar="TARGET", help="all, clean or notebook names")
    p.add_argument("--list", action="store_true", help="list the notebooks and their state")
    p.add_argument("--preset", default="quick",
                   help="smoke, quick (default: minutes on a laptop CPU), paper, or a .yaml")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="notebooks run at once (those sharing results never run together)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--trials", type=int, help="trials (default: the preset's)")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads per notebook (default: the notebooks' own, 1)")
    p.add_argument("--data-dir", help="datasets folder (default: $LTH_DATA, else ./data)")
    p.add_argument("--results-dir", default=str(REPO / "results"),
                   help="results folder (default: results/)")
    p.add_argument("--figures-dir",
                   help="where figures are written (default: figures/PRESET/)")
    p.add_argument("--build-dir", default=str(REPO / "build"),
                   help="executed notebooks and the report (default: build/)")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                   help="set a notebook parameter (YAML value), e.g. -p trials=3")
    p.add_argument("--train", action=argparse.BooleanOptionalAction, default=None,
                   help="train what the results lack (default: yes, except for the paper "
                        "preset); --no-train reads the results on disk (committed ones) as far "
                        "as they go")
    p.add_argument("--force", action="store_true", help="execute even up-to-date notebooks")
    return p


def list_notebooks(build: Build) -> int:
    print(f"notebooks (preset {build.args.preset}; build folder {rel(build.build_dir)}):")
    for name, info in NOTEBOOKS.items():
        state = build.state(name)
        if not state:
            status = "not built"
        elif state.get("status") == "failed":
            status = "failed last time"
        else:
            fresh, why = build.up_to_date(name)
            status = "up to date" if fresh else f"will execute: {why}"
        archs = default_parameters(name).get("architectures", [])
        print(f"  {name:<15} {info['title']}\n  {'':<15} architectures {', '.join(archs)}; "
              f"{status}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        return child(argv[1])
    args = parser().parse_args(argv)
    try:
        if args.jobs < 1:
            raise BuildError("--jobs must be at least 1")
        build = Build(args)
        if args.list:
            return list_notebooks(build)
        targets = args.targets or []
        if not targets:
            raise BuildError("nothing to build: give all, clean or notebook names "
                             f"({', '.join(NOTEBOOKS)}), or --list")
        if "clean" in targets:
            if len(targets) > 1:
                raise BuildError("clean takes no other targets")
            if build.build_dir.exists():
                shutil.rmtree(build.build_dir)
                print(f"removed {rel(build.build_dir)} (results and figures are kept)")
            else:
                print(f"nothing to clean: {rel(build.build_dir)} does not exist")
            return 0
        unknown = [t for t in targets if t != "all" and t not in NOTEBOOKS]
        if unknown:
            raise BuildError(f"unknown notebook {unknown[0]!r}; choose all, clean or one of "
                             f"{', '.join(NOTEBOOKS)}")
        names = list(NOTEBOOKS) if "all" in targets else targets
        for name in names:
            if not notebook_path(name).exists():
                raise BuildError(f"{rel(notebook_path(name))} is missing")
            default_parameters(name)
        missing = [m for m in ("papermill", "nbconvert", "nbformat", "ipykernel")
                   if not _importable(m)]
        if missing:
            raise BuildError(f"{', '.join(missing)} not installed: pip install -e "
                             f"'.[notebooks]'")
        return run_build(build, names)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _importable(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
