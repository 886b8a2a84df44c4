"""How far weights move in training: winning tickets against random reinitialization with the
same mask (paper Appendix F.5, "Comparing initial and final weights in winning tickets",
Figures 19-20, which look at the dense network's weights; here every pruned network too).

Checkpoints hold the trained weights but are not committed (too large), so the movement of
every network is kept in a small committed table beside the run, `<run>/movement.csv`, one row
per (strategy, trial, round, layer):

  remaining       surviving weights of the layer
  mean_abs_init   mean |w_init| over surviving weights (the scale moves are measured against)
  mean_abs_move   mean |w_trained - w_init| over surviving weights
  rel_l2          ||m * (w_trained - w_init)||_2 / ||m * w_init||_2
  moved_away      fraction (%) of surviving weights whose magnitude grew (Figure 20)

    python -m lth_utils.movement RUN_FOLDER [RUN_FOLDER ...]

adds the rows of every finished unit whose checkpoint is on disk and whose rows are not in the
table yet. Rows are never dropped (a unit whose checkpoint is gone keeps its rows) and never
computed again. Bad input is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pandas as pd
import torch

from .errors import LTHError
from .formats import atomic_write
from .models import LotteryNet
from .store import Store
from .strategies import RUN_ORDER, Unit

FILE = "movement.csv"
KEY = ["strategy", "trial", "round"]
COLUMNS = ["arch", "dataset", *KEY, "pm", "layer", "remaining", "mean_abs_init",
           "mean_abs_move", "rel_l2", "moved_away"]


def movement_rows(ckpt: dict) -> list:
    """The per-layer rows (dicts of COLUMNS) of one checkpoint (`formats.checkpoint`)."""
    hp, rows = ckpt["hparams"], []
    for name, m in ckpt["mask"].items():
        key = LotteryNet.weight_key(name)
        init = ckpt["initial"][key].double()[m]
        trained = ckpt["trained"][key].double()[m]
        move = trained - init
        n = int(m.sum())
        rows.append({"arch": hp["arch"], "dataset": hp["dataset"], "strategy": ckpt["strategy"],
                     "trial": ckpt["trial"], "round": ckpt["round"], "pm": ckpt["pm"],
                     "layer": name, "remaining": n,
                     "mean_abs_init": init.abs().mean().item() if n else float("nan"),
                     "mean_abs_move": move.abs().mean().item() if n else float("nan"),
                     "rel_l2": (move.norm() / init.norm()).item() if n else float("nan"),
                     "moved_away": 100 * (trained.abs() > init.abs()).double().mean().item()
                     if n else float("nan")})
    return rows


def read_movement(folder) -> pd.DataFrame:
    """`<folder>/movement.csv`, or an empty table of its columns if there is none."""
    path = Path(folder) / FILE
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    try:
        table = pd.read_csv(path, dtype={"layer": str})
    except Exception as e:
        raise LTHError(f"{path} is not readable ({type(e).__name__}); restore it from git")
    if list(table.columns) != COLUMNS:
        raise LTHError(f"{path} is damaged (its header is not {','.join(COLUMNS)}); "
                       f"restore it from git")
    return table


def _sorted(table: pd.DataFrame, layers: list) -> pd.DataFrame:
    order = {s: i for i, s in enumerate(RUN_ORDER)}
    keys = table.assign(_s=table["strategy"].map(order),
                        _l=table["layer"].map({n: i for i, n in enumerate(layers)}))
    return keys.sort_values(["_s", "trial", "round", "_l"]).drop(columns=["_s", "_l"])


def update_movement(folder) -> tuple:
    """Add to `<folder>/movement.csv` the rows of each finished unit whose checkpoint is here
    and whose rows are not yet in it; returns (path, units added). Written atomically, only
    when something was added."""
    store = Store(folder)
    hp = store.read_hparams()
    store = Store(folder, hp.arch, hp.dataset)
    table = read_movement(folder)
    have = {Unit(s, int(t), int(r)) for s, t, r in table[KEY].drop_duplicates().itertuples(
        index=False)}
    new = []
    for unit in sorted(store.finished() - have, key=lambda u: (u.strategy, u.trial, u.round)):
        if store.checkpoint_path(unit, hp.iterations).is_file():
            new += movement_rows(store.read_checkpoint(unit, hp.iterations))
    path = store.dir / FILE
    if new:
        layers = LotteryNet(hp.arch, hp.dataset).prunable_names
        merged = pd.concat([table, pd.DataFrame(new, columns=COLUMNS)], ignore_index=True) \
            if len(table) else pd.DataFrame(new, columns=COLUMNS)
        text = io.StringIO()
        _sorted(merged, layers).to_csv(text, index=False, lineterminator="\n",
                                       float_format="%.6g")
        atomic_write(path, text.getvalue())
    return path, len({(r["strategy"], r["trial"], r["round"]) for r in new})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lth_utils.movement",
                                description="Add each finished network's per-layer weight "
                                            "movement to <run>/movement.csv (Appendix F.5).")
    p.add_argument("folders", nargs="+", metavar="RUN_FOLDER",
                   help="a results folder, e.g. results/lenet_mnist_paper")
    args = p.parse_args(argv)
    try:
        torch.set_num_threads(1)
        for folder in args.folders:
            path, added = update_movement(folder)
            print(f"{path}: {added} network(s) added")
    except LTHError as e:
        print("error: " + " ".join(str(e).splitlines()), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
