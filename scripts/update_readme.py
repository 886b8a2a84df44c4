#!/usr/bin/env python
"""Regenerate README.md's generated parts from the committed paper-protocol results.

    python scripts/update_readme.py [--results results] [--readme README.md] [--check]

For each run folder of `paper` and of its variants (`claims_report.run_folders`) it first
writes `metrics.csv.gz` from `metrics.csv` where the run left one (gzip level 9, no name or
time stamp: the same CSV gives the same bytes), then replaces the text between these markers
in the README:

    <!-- status: paper --> ... <!-- /status --> one paragraph: how far each run has come and
                                                 how many claims hold
    <!-- run: paper --> ... <!-- /run -->       each run's progress, provenance and a table of
                                                 its rounds (analysis.round_table), the
                                                 variants' runs after paper's
    <!-- claims: paper --> ... <!-- /claims --> the claims table (python -m lth_utils claims)

With --check it changes nothing and exits 1 if the README differs from what it would write.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lth_utils import analysis, claims, claims_report, run_data  # noqa: E402
from lth_utils.paper import NORMALIZATIONS  # noqa: E402
from lth_utils.store import Store  # noqa: E402
from lth_utils.tables import Tables  # noqa: E402

PRESET = "paper"


def compress_metrics(results_dir: Path) -> None:
    for folder in claims_report.run_folders(results_dir, PRESET):
        if (folder / "metrics.csv").is_file():
            Tables(folder).compress_metrics()


def wall_hours(folder: Path) -> float:
    """Training wall time of a run: the sum of its groups' seconds in provenance.jsonl."""
    events = Store(folder).provenance()
    return sum(e.get("seconds", 0.0) for e in events if e.get("event") == "group") / 3600


def started(folder: Path, key: str) -> str:
    """Each value of `key` (machine, threads) that the run's starts recorded, in order."""
    values = [str(e[key]) for e in Store(folder).provenance()
              if e.get("event") == "start" and key in e]
    return " and ".join(dict.fromkeys(values)) or "?"


def progress(r) -> str:
    """How far a run has come, e.g. `rounds 0 to 2 of 18 (Pm 100 to 64.1%), 45 of 365
    networks`, naming the strategies that are behind: `(Pm 100 to 1.9%; one-shot and random
    sparse to round 8)`."""
    s, status = r.summary, run_data.run_status(r.folder, r.hp)
    behind = run_data.behind(s)
    behind = f"; {behind}" if behind else ""
    return (f"rounds 0 to {int(s['round'].max())} of {r.hp.rounds} (Pm 100 to "
            f"{s['pm'].min():.1f}%{behind}), {status.done} of {status.planned} networks")


def status_section(runs: dict, evaluated) -> str:
    done = "; ".join(f"{run_data.ARCH_NAMES[arch]}: {progress(r)}" for arch, r in runs.items())
    missing = [run_data.ARCH_NAMES[a] for a in run_data.ARCH_NAMES if a not in runs]
    return (f"At the paper's protocol, committed so far: {done or 'nothing'}"
            + (f"; not run: {', '.join(missing)}" if missing else "") + ". Of the paper's "
            f"{len(evaluated)} quantitative claims in `params/claims.yaml` "
            f"([the table](#reproduction-the-papers-claims)): "
            f"{claims_report.verdict_summary(evaluated)}")


def run_section(runs: list) -> str:
    if not runs:
        return "No paper-protocol results are committed yet."
    parts = []
    for r in runs:
        p = r.params
        parts.append(
            f"**{run_data.ARCH_NAMES[r.hp.arch]}** (`results/{Path(r.folder).name}/`, "
            f"{NORMALIZATIONS[r.hp.normalization]} inputs): "
            f"{progress(r)}, {wall_hours(Path(r.folder)):.1f} h of training"
            f"{'' if run_data.run_status(r.folder, r.hp).state == 'complete' else ' so far'} "
            f"({started(Path(r.folder), 'machine')}; {p.get('device', '?')}, "
            f"{started(Path(r.folder), 'threads')} thread(s), torch {p.get('torch', '?')}). "
            f"Early-stopping iteration, mean "
            f"(min-max over {r.trials} trials), and the mean test accuracy there:\n\n"
            + analysis.markdown_table(analysis.round_table(r), index=True))
    return "\n\n".join(parts)


def replace_block(text: str, tag: str, end: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {tag}: {PRESET} -->\n)(?:.*?\n)?(<!-- /{end} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"error: README has no <!-- {tag}: {PRESET} --> ... <!-- /{end} --> "
                         f"block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(REPO / "results"))
    ap.add_argument("--readme", default=str(REPO / "README.md"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the README is not what this would write; change nothing")
    args = ap.parse_args(argv)
    results_dir, readme = Path(args.results), Path(args.readme)
    if not args.check:
        compress_metrics(results_dir)
    runs = claims_report.load_runs(results_dir, PRESET)
    evaluated = claims_report.evaluate_claims(runs, claims.load_claims())
    table = claims_report.markdown(evaluated, runs)
    old = readme.read_text()
    new = replace_block(old, "status", "status", status_section(runs, evaluated))
    variants = [r for v in claims_report.VARIANTS
                for r in claims_report.load_runs(results_dir, v).values()]
    new = replace_block(new, "run", "run", run_section([*runs.values(), *variants]))
    new = replace_block(new, "claims", "claims", table)
    sensitivity = claims_report.sensitivity(results_dir, PRESET)
    new = replace_block(new, "sensitivity", "sensitivity",
                        analysis.markdown_table(sensitivity) if len(sensitivity) else
                        "No run of a variant preset is committed yet.")
    if args.check:
        if new != old:
            print(f"{readme} is out of date: python scripts/update_readme.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
