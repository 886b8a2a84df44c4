"""A group's training state, so that a stopped run resumes inside its round with exactly the
numbers of an uninterrupted one: saved every SAVE_EVERY_SECONDS and at Ctrl-C (turned into a
flag the training loop checks between iterations), read back whole and checked.
"""
import contextlib
import signal
import threading
from pathlib import Path

from .errors import LTHError
from .formats import read_torch, save_torch

# With a state file, a run's state (weights, Adam moments, records so far) is saved this
# often, and at Ctrl-C.
SAVE_EVERY_SECONDS = 300.0
# Format 2 adds each network's early-stopping weights so far; format 1 states still resume
# (a network's early-stopping weights are then known only if a later evaluation improves on
# the validation losses it had recorded).
STATE_FORMAT = "lth_utils.group-state/2"
STATE_FORMATS = (STATE_FORMAT, "lth_utils.group-state/1")


@contextlib.contextmanager
def deferred_interrupt(enabled: bool):
    """Turn Ctrl-C into a flag the training loop checks between iterations, so it can save a
    consistent state before stopping (only in the main thread, and only when `enabled`)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    flag = []
    previous = signal.signal(signal.SIGINT, lambda *_: flag.append(True))
    try:
        yield lambda: bool(flag)
    finally:
        signal.signal(signal.SIGINT, previous)


def read_state(path: Path, net, optimizer, iterations: int | None = None) -> dict:
    """A group state file (`train`'s `state_file`), read whole and checked against `net`: its
    weights, Adam state (loaded into `optimizer`, training.adam of `net`), records and
    snapshots."""
    remedy = "delete it to train that group again from its start"
    saved = read_torch(path, STATE_FORMATS, "group state file", remedy)
    try:
        ours, state = net.parameters(), saved["optimizer"]["state"]
        same = [tuple(t.shape) for t in saved["weights"]] == [tuple(t.shape) for t in ours]
        same = same and all(state[i][m].shape == ours[i].shape for i in state
                            for m in ("exp_avg", "exp_avg_sq"))
        same = same and len(saved["evals"]) == len(saved["snapshots"]) == net.k and all(
            len(e) == 4 for evals in saved["evals"] for e in evals)
        same = same and 0 <= saved["iteration"] <= (iterations or saved["iteration"])
        early = saved.get("early_stop", [None] * net.k)
        same = same and len(early) == net.k and all(
            e is None or (type(e[0]) is int and isinstance(e[1], dict)) for e in early)
        if same:
            optimizer.load_state_dict(saved["optimizer"])
    except Exception:  # an entry missing or of another kind
        same = False
    if not same:
        raise LTHError(f"{path} is damaged or holds the state of other networks; {remedy}")
    return saved


def write_state(path: Path, iteration: int, seconds: float, net, optimizer, results) -> None:
    """The state of `net`'s K networks at the boundary before `iteration`, after `seconds` of
    training: weights, Adam state, and each TrainResult's records, snapshot and early-stopping
    weights so far."""
    state = {"format": STATE_FORMAT, "iteration": iteration, "seconds": seconds,
             "weights": net.parameters(),
             "optimizer": optimizer.state_dict(),
             "evals": [r.evals for r in results], "snapshots": [r.snapshot for r in results],
             "early_stop": [r.early_stop for r in results]}
    save_torch(path, state)
