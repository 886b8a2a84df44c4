"""Command line: `python -m lth_utils run [ARCH] [DATASET] ...`, `... evaluate CHECKPOINT` and
`... claims [--preset NAME]` (the paper's claims checked on a results folder, as Markdown).

Bad input (unknown architecture, dataset or preset, a malformed preset, missing data, an
unreadable checkpoint) is reported as one line on stderr with exit status 2. Arguments are
parsed, and the parameters checked, before torch is imported: --help and bad input are quick.
"""
import argparse
import sys
from pathlib import Path

from .config import STRATEGIES
from .errors import LTHError
from .presets import CLAIMS_FILE, PRESETS_DIR, available_presets, read_preset, resolve


EPILOG = """\
`run` with no arguments is `run lenet mnist --preset paper --out results`: a folder that stopped
partway is resumed where it stopped; a complete one (as the committed
results/lenet_mnist_paper/ and --preset paper_standardize's are) is only read: the run says
how to read it and trains nothing.
Defaults of `run`: preset paper (the paper's protocol), results in OUT/ARCH_DATASET_PRESET/
with OUT = results, data in --data-dir, else $LTH_DATA, else ./data, device cpu, torch's own
number of threads, engine stacked, precision the preset's (float32), no time budget.
`run --preset quick` is a short run of the whole pipeline; `run --help` says more."""


def _device(name: str) -> str:
    import torch

    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise LTHError(f"unknown device {name!r}; choose cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LTHError("--device cuda was asked for, but CUDA is not available here")
    return name


class Parser(argparse.ArgumentParser):
    """argparse's errors as one line too (its own would print the whole usage first)."""
    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m lth_utils",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Lottery Ticket Hypothesis experiments "
                                            "(Frankle & Carbin, ICLR 2019).", epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) an experiment",
                         description="Run (or resume) an experiment: every trial, pruning round "
                                     "and strategy of a preset; results go to "
                                     "OUT/ARCH_DATASET_PRESET/. With no arguments: lenet "
                                     "mnist --preset paper, which resumes its committed "
                                     "results where they stopped; on a complete folder it "
                                     "says how to read it and trains nothing.")
    run.add_argument("arch", nargs="?", default="lenet",
                     help="lenet, conv2, conv4 or conv6 (default: lenet)")
    run.add_argument("dataset", nargs="?", default=None,
                     help="mnist or cifar10 (default: the paper's dataset for ARCH: mnist for "
                          "lenet, cifar10 for the conv nets)")
    run.add_argument("--preset", default="paper",
                     help=f"{', '.join(available_presets())} or a path to a .yaml preset "
                          f"(default: paper, the paper's protocol; named presets are in "
                          f"{PRESETS_DIR})")
    run.add_argument("--strategies", nargs="+", metavar="S",
                     help=f"{', '.join(STRATEGIES)} (default: the preset's)")
    run.add_argument("--trials", type=int, help="number of trials (default: the preset's)")
    run.add_argument("--out", default="results",
                     help="where results go: OUT/ARCH_DATASET_PRESET/, resumed if it is "
                          "there (default: results, which holds the committed paper runs)")
    run.add_argument("--data-dir",
                     help="data folder (default: $LTH_DATA, else ./data); missing datasets "
                          "are downloaded there")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    run.add_argument("--threads", type=int, default=None,
                     help="CPU threads for torch (default: torch's own, one per core). 1 is "
                          "often faster on a small shared CPU, or when several runs share "
                          "the machine side by side")
    run.add_argument("--engine", default="stacked",
                     help="stacked (default: a round's networks as one batched computation) "
                          "or reference (one network at a time)")
    run.add_argument("--time-budget", type=float, metavar="SECONDS",
                     help="stop cleanly before this much wall time: at a group boundary when "
                          "the next group does not fit, else inside it with its state saved "
                          "(default: no limit)")
    run.add_argument("--max-models", type=int, default=0,
                     help="at most this many networks in one batched computation "
                          "(default: 0, a whole round)")
    run.add_argument("--precision", help="float32 (the paper's), tf32 (CUDA tensor cores) or "
                                         "bfloat16 (bf16 autocast); the last two are faster, "
                                         "with slightly different numbers (default: the "
                                         "preset's, float32 in every shipped preset)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bars (default: progress bars on)")

    ev = sub.add_parser("evaluate", help="loss and accuracy of a checkpoint")
    ev.add_argument("checkpoint")
    ev.add_argument("--split", default="test", help="train, val or test (default: test)")
    ev.add_argument("--weights", default="trained",
                    help="trained (at the last iteration), initial, or early_stop (at the "
                         "iteration of minimum validation loss, Figure 1) (default: trained)")
    ev.add_argument("--data-dir", help="data folder (default: $LTH_DATA, else ./data)")
    ev.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")

    cl = sub.add_parser("claims", help="check the paper's claims on results (Markdown table)")
    cl.add_argument("--preset", default="paper", help="whose results (default: paper)")
    cl.add_argument("--results", default="results", help="results folder (default: results)")
    cl.add_argument("--claims", help="claims file (default: claims.yaml beside the presets)")
    return p


def _claims_table(results: str, preset: str, claims_file: str | None) -> str:
    """The claims table of `preset`'s runs in the folder `results` (pandas, an optional
    dependency, is imported only here). A missing folder or an unknown preset is an error, as
    for `run`; a known preset without runs there gives every claim "not run"."""
    try:
        from . import claims, claims_report
    except ImportError as e:
        raise LTHError(f"the claims command needs {e.name} (pip install -e '.[notebooks]')") \
            from None
    if not Path(results).is_dir():
        raise LTHError(f"no results folder {results} (--results names the folder that holds "
                       "ARCH_DATASET_PRESET/ folders; default: results)")
    read_preset(preset)
    runs = claims_report.load_runs(results, Path(preset).stem)
    checked = claims.load_claims(claims_file or CLAIMS_FILE)
    return claims_report.markdown(claims_report.evaluate_claims(runs, checked), runs)


def _run(args) -> None:
    if args.threads is not None and args.threads < 1:
        raise LTHError(f"--threads must be at least 1, not {args.threads}")
    if args.max_models < 0:
        raise LTHError(f"--max-models must be at least 0 (0: a whole round), not "
                       f"{args.max_models}")
    if args.time_budget is not None and not 0 < args.time_budget < float("inf"):
        raise LTHError("--time-budget must be a positive number of seconds")
    hp = resolve(args.arch, args.dataset, args.preset, trials=args.trials,
                 strategies=args.strategies, precision=args.precision)
    import torch

    from .experiment import run_experiment

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    run_experiment(hp, args.out, args.data_dir, _device(args.device),
                   progress=not args.no_progress, engine=args.engine, max_models=args.max_models,
                   time_budget=args.time_budget)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "run":
            _run(args)
        elif args.command == "claims":
            print(_claims_table(args.results, args.preset, args.claims))
        else:
            from .evaluation import load_and_evaluate

            loss, accuracy = load_and_evaluate(args.checkpoint, args.split, args.data_dir,
                                               _device(args.device), args.weights)
            print(f"{args.split}: loss {loss:.4f}, accuracy {100 * accuracy:.2f}%")
    except LTHError as e:
        print("error: " + " ".join(str(e).splitlines()), file=sys.stderr)  # one line, always
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept; the same command resumes", file=sys.stderr)
        return 130
    return 0
