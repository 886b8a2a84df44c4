"""The HTML report of a build (build.py): the executed notebooks rendered by nbconvert, the
front page (templates/index.html.j2) leading with the paper's claims and their verdicts
(lth_utils.claims_report, the paper's Sections 2 and 3), and the figures' manifest
(build.json).

What a notebook did is read from its executed copy: papermill's metadata (parameters, end
time, wall time, whether a cell raised), the figures it showed (lth_utils.figure_style.save_figure
tags each with `lth_figure`) and `lth_build.inputs`, the hash build.py keeps there.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Notebook:
    """One notebook of the report (notebooks/NAME.ipynb): its heading and one paragraph."""
    title: str
    blurb: str


def notebook_record(executed: Path) -> dict | None:
    """What an executed notebook says about its run, None if there is none: status ("ok" or
    "failed"), wall time (s), end time, parameters, inputs hash, figures (dicts with name,
    png, svg, caption) and, if it failed, a two-line message naming the cell and the error."""
    try:
        nb = json.loads(Path(executed).read_text())
    except (OSError, ValueError):
        return None
    pm = nb.get("metadata", {}).get("papermill", {})
    record = {"status": "ok" if pm.get("end_time") and not pm.get("exception") else "failed",
              "duration": pm.get("duration"), "end_time": pm.get("end_time"),
              "parameters": pm.get("parameters", {}), "failure": None, "figures": [],
              "inputs": nb.get("metadata", {}).get("lth_build", {}).get("inputs")}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for number, cell in enumerate(code, 1):
        for out in cell.get("outputs", []):
            meta = (out.get("metadata") or {}).get("lth_figure")
            if meta and meta["name"] not in {f["name"] for f in record["figures"]}:
                record["figures"].append(meta)
            if out.get("output_type") == "error" and record["failure"] is None:
                evalue = (out.get("evalue") or "").strip().splitlines() or [""]
                lines = [ln.strip() for ln in "".join(cell["source"]).splitlines() if ln.strip()]
                name = Path(executed).stem
                record["failure"] = (
                    f"notebook {name} failed in code cell {number} (In "
                    f"[{cell.get('execution_count')}]): {out.get('ename')}: {evalue[0]}"
                    + (f"\n  the cell: {lines[0]}{' ...' if len(lines) > 1 else ''}"
                       if lines else ""))
    return record


def render_notebook(executed: Path, html_path: Path) -> None:
    """The executed notebook as a standalone page (nbconvert's lab template extended by
    templates/notebook.html.j2: wall time on top, wide tables scroll, long lines wrap)."""
    import nbformat
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(TEMPLATES)],
                            template_file="notebook.html.j2")
    with warnings.catch_warnings():  # papermill's copies keep the source's cells without ids
        warnings.simplefilter("ignore", nbformat.validator.MissingIDFieldWarning)
        nb = nbformat.read(str(executed), as_version=4)
        body, _ = exporter.from_notebook_node(nb, {"metadata": {"name": Path(executed).stem}})
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body)


def claims_context(results_dir: Path, preset: str) -> dict:
    """The claims table of the results of `preset` in `results_dir`
    (lth_utils.claims_report): rows with id, network, where, quote, paper, this run, at Pm,
    verdict, note; the counts; one line per run on its protocol; the sensitivity table (the
    claims on the paper run and on each variant's, "What does not reproduce": its columns and
    rows, empty unless `preset` is its base and a variant has results); or the error that
    kept them from being read."""
    from . import claims_report
    from .errors import LTHError
    try:
        runs = claims_report.load_runs(results_dir, preset)
        evaluated = claims_report.evaluate_claims(runs)
        by_label = (claims_report.variant_runs(results_dir, base_runs=runs)
                    if preset == claims_report.BASE else {})
        table = claims_report.sensitivity(results_dir, by_label=by_label) if by_label else None
    except (LTHError, OSError, ValueError) as e:
        return {"error": str(e), "rows": [], "counted": {}, "notes": [], "sensitivity": {}}
    rows = claims_report.claims_table(evaluated).assign(id=evaluated["id"]).to_dict(
        "records")
    return {"error": None, "rows": rows,
            "counted": {v: claims_report.counted(v, n)
                        for v, n in claims_report.verdict_counts(evaluated).items()},
            "notes": [claims_report.protocol_note(r) for r in runs.values()],
            "sensitivity": ({"columns": list(table.columns), "rows": table.values.tolist()}
                            if table is not None and len(table) else {})}


def write_manifest(build, notebooks: dict) -> dict:
    """build/figures/PRESET/build.json: the commit, and for each notebook that ran to the end
    its parameters, end time, wall time, figures and the results folders it read with how
    many of their planned runs were finished ({"runs": done, "of": planned})."""
    from .run_data import folder_status
    from .provenance import git_commit
    rel = lambda p: os.path.relpath(p, build.repo)  # noqa: E731
    entries = {}
    for name in notebooks:
        record = notebook_record(build.executed(name))
        if not record or record["status"] != "ok":
            continue
        params = {k: rel(v) if k.endswith("_dir") and isinstance(v, str) else v
                  for k, v in record["parameters"].items()}
        results = {rel(f): {"runs": s.done, "of": s.planned} for f, hp, strategies in
                   build.experiments(name) if hp is not None and (f / "summary.csv").is_file()
                   for s in [folder_status(f, hp)]}
        entries[name] = {"executed_at": record["end_time"], "wall_s": record["duration"],
                         "parameters": params, "results": results,
                         "figures": [f["name"] for f in record["figures"]]}
    manifest = {"preset": build.stem, "git": git_commit(), "device": build.args.device,
                "notebooks": entries}
    build.figures_dir.mkdir(parents=True, exist_ok=True)
    (build.figures_dir / "build.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def shown_path(path: Path, repo: Path) -> str:
    """`path` as the report shows it: relative to the repository inside it, else absolute."""
    path = Path(path).resolve()
    return str(path.relative_to(repo.resolve()) if path.is_relative_to(repo.resolve()) else path)


def write_report(build, notebooks: dict) -> Path:
    """build/report/index.html and its figures (this build's only: another preset's, drawn
    into the same folder before, are removed); returns the page's path."""
    import jinja2
    from importlib.metadata import version
    manifest = write_manifest(build, notebooks)
    report = build.dir / "report"
    shutil.rmtree(report / "figures", ignore_errors=True)
    (report / "figures").mkdir(parents=True)
    sections = []
    for name, info in notebooks.items():
        record = notebook_record(build.executed(name))
        for fig in (record or {}).get("figures", []):
            for key in ("png", "svg"):
                if (build.figures_dir / fig[key]).is_file():
                    shutil.copy2(build.figures_dir / fig[key], report / "figures" / fig[key])
            fig["shown"] = (report / "figures" / fig["png"]).is_file()
        page = report / f"{name}.html"
        page.unlink(missing_ok=True)
        if record is not None:
            render_notebook(build.executed(name), page)
        sections.append({"name": name, "info": info, "record": record,
                         "html": page.is_file()})
    shutil.copy2(TEMPLATES / "report.css", report / "report.css")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    page = env.get_template("index.html.j2").render(
        preset=build.stem, claims=claims_context(build.results_dir, build.stem),
        sections=sections, manifest=manifest,
        results_dir=shown_path(build.results_dir, build.repo),
        manifest_path=shown_path(build.figures_dir / "build.json", build.repo),
        overrides=build.overrides, train=build.train,
        versions={"python": platform.python_version(), "torch": version("torch")})
    index = report / "index.html"
    index.write_text(page)
    return index


def publish(build, to: Path) -> int:
    """Copy the last build's figures and their manifest into `to` (figures/PRESET/), removing
    the figures there that the build did not draw."""
    from .errors import LTHError
    manifest = build.figures_dir / "build.json"
    if not manifest.is_file():
        raise LTHError(f"nothing to publish: no build of preset {build.stem} in "
                       f"{os.path.relpath(build.figures_dir)}; run python build.py all "
                       f"--preset {build.preset} first")
    drawn = [f for nb in json.loads(manifest.read_text())["notebooks"].values()
             for f in nb["figures"]]
    files = [f"{f}.{ext}" for f in drawn for ext in ("png", "svg")] + ["build.json"]
    to.mkdir(parents=True, exist_ok=True)
    for old in [*to.glob("*.png"), *to.glob("*.svg")]:
        if old.name not in files:
            old.unlink()
    for name in files:
        shutil.copy2(build.figures_dir / name, to / name)
    print(f"published {len(drawn)} figure(s) and build.json to {to}")
    return 0
