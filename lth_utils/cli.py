"""Command line: `python -m lth_utils run [ARCH] [DATASET] ...`, `... evaluate CHECKPOINT` and
`... claims [--preset NAME]` (the paper's claims checked on a results folder, as Markdown).

Bad input (unknown architecture, dataset or preset, a malformed preset, missing data, an
unreadable checkpoint) is reported as one line on stderr with exit status 2.
"""
import argparse
import sys

import torch

from .config import STRATEGIES, available_presets, resolve
from .errors import LTHError
from .experiment import load_and_evaluate, run_experiment


def _device(name: str) -> str:
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise LTHError(f"unknown device {name!r}; choose cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LTHError("--device cuda was asked for, but CUDA is not available here")
    return name


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lth_utils",
                                description="Lottery Ticket Hypothesis experiments "
                                            "(Frankle & Carbin, ICLR 2019).")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) an experiment")
    run.add_argument("arch", nargs="?", default="lenet", help="lenet, conv2, conv4 or conv6")
    run.add_argument("dataset", nargs="?", default=None,
                     help="mnist or cifar10 (default: the paper's dataset for ARCH)")
    run.add_argument("--preset", default="paper",
                     help=f"{', '.join(available_presets())} or a path to a .yaml preset")
    run.add_argument("--strategies", nargs="+", metavar="S", help=", ".join(STRATEGIES))
    run.add_argument("--trials", type=int, help="number of trials (preset's by default)")
    run.add_argument("--out", default="results", help="results folder (default: results)")
    run.add_argument("--data-dir", help="data folder (default: $LTH_DATA, else ./data)")
    run.add_argument("--device", default="cpu", help="cpu or cuda")
    run.add_argument("--threads", type=int, default=1,
                     help="CPU threads for torch (default: 1, fastest on a small shared CPU)")
    run.add_argument("--engine", default="stacked",
                     help="stacked (default: a round's networks as one batched computation) "
                          "or reference (one network at a time)")
    run.add_argument("--max-models", type=int, default=0,
                     help="at most this many networks in one batched computation (0: a round)")
    run.add_argument("--precision", help="float32 (the paper's, default), tf32 (CUDA tensor "
                                         "cores) or bfloat16 (bf16 autocast); the last two are "
                                         "faster, with slightly different numbers")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    ev = sub.add_parser("evaluate", help="loss and accuracy of a checkpoint")
    ev.add_argument("checkpoint")
    ev.add_argument("--split", default="test", help="train, val or test")
    ev.add_argument("--weights", default="trained", help="trained or initial")
    ev.add_argument("--data-dir")
    ev.add_argument("--device", default="cpu")

    cl = sub.add_parser("claims", help="check the paper's claims on results (Markdown table)")
    cl.add_argument("--preset", default="paper", help="whose results (default: paper)")
    cl.add_argument("--results", default="results", help="results folder (default: results)")
    cl.add_argument("--claims", help="claims file (default: params/claims.yaml)")
    return p


def _claims_table(results: str, preset: str, claims_file: str | None) -> str:
    """The claims table of `results` (pandas, an optional dependency, is imported only here)."""
    try:
        from . import claims
    except ImportError as e:
        raise LTHError(f"the claims command needs {e.name} (pip install -e '.[notebooks]')") \
            from None
    runs = claims.load_runs(results, preset)
    checked = claims.load_claims(claims_file or claims.CLAIMS_FILE)
    return claims.markdown(claims.evaluate_claims(runs, checked), runs)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "run":
            if args.threads < 1 or args.max_models < 0:
                raise LTHError("--threads must be at least 1 and --max-models at least 0")
            torch.set_num_threads(args.threads)
            hp = resolve(args.arch, args.dataset, args.preset, trials=args.trials,
                         strategies=args.strategies, precision=args.precision)
            run_experiment(hp, args.out, args.data_dir, _device(args.device),
                           progress=not args.no_progress, engine=args.engine,
                           max_models=args.max_models)
        elif args.command == "claims":
            print(_claims_table(args.results, args.preset, args.claims))
        else:
            loss, accuracy = load_and_evaluate(args.checkpoint, args.split, args.data_dir,
                                               _device(args.device), args.weights)
            print(f"{args.split}: loss {loss:.4f}, accuracy {100 * accuracy:.2f}%")
    except LTHError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept; the same command resumes", file=sys.stderr)
        return 130
    return 0
