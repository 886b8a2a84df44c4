"""A wall-time budget for a run (`--time-budget SECONDS`): train what fits, stop cleanly.

A run under a budget stops at a group boundary when the next group's estimated time (from the
groups this folder has trained, provenance.jsonl) does not fit in what is left, and otherwise
inside a group a margin before the end, saving the group's state as Ctrl-C does. Either way the
folder holds every finished unit (CSVs, frontier), ready to commit and to resume: on the same
machine from the saved group state, on another from the last finished group.
"""
from __future__ import annotations

import time


class TimeBudget:
    def __init__(self, seconds: float, margin: float | None = None):
        self.seconds = seconds
        self.margin = min(30.0, 0.05 * seconds) if margin is None else margin
        self.deadline = time.monotonic() + seconds
        self.spent = ""  # why the run stopped, once it did

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def fits(self, estimate: float | None) -> bool:
        """Whether a group of `estimate` seconds (None: unknown, so try) ends in time."""
        return estimate is None or estimate <= self.left() - self.margin

    def should_stop(self, iteration: int) -> bool:
        """Asked by the training loop at each iteration: stop (and save) now?"""
        return self.left() <= self.margin


def estimate(events: list, units: int) -> float | None:
    """Seconds for a group of `units` networks, from the last trained group's seconds per
    network (provenance.jsonl's group events), or None if none was trained here."""
    groups = [e for e in events if e.get("event") == "group" and e.get("units")]
    if not groups:
        return None
    last = groups[-1]
    return last["seconds"] / len(last["units"]) * units
