"""What a run says while it trains: labelled progress bars, the time left for the whole run,
where it resumes from, and what a complete folder is for.

The estimate of the time left counts the work of every planned group still to train, in
network-iterations (K networks for N iterations are K x N), at the speed this invocation has
measured on the iterations it trained itself: iterations a resumed group had already done are
neither work left nor part of the speed. Until a few seconds are measured it uses the speed of
the last group this folder logged (provenance.jsonl), if any.
"""
from __future__ import annotations

import time

from tqdm.auto import tqdm

MEASURED_SECONDS = 10.0  # own measurement this long before it replaces the logged speed


def clock(seconds: float) -> str:
    """`seconds` as H:MM:SS."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def logged_speed(events: list, iterations: int) -> float | None:
    """Network-iterations per second of the last group a folder logged (provenance.jsonl:
    its units and wall seconds), each network taken as `iterations` long; None if none."""
    groups = [e for e in events if e.get("event") == "group" and e.get("units")
              and e.get("seconds")]
    if not groups:
        return None
    return len(groups[-1]["units"]) * iterations / groups[-1]["seconds"]


class RunProgress:
    """The progress of one invocation: an outer bar of networks (`label`, `planned` networks
    of which `done` finished), an inner bar of iterations per group, and the time left over
    `work` network-iterations, the whole of what this invocation has left to train."""

    def __init__(self, label: str, planned: int, done: int, work: int, enabled: bool,
                 speed: float | None = None):
        self.enabled, self.left, self.prior = enabled, work, speed
        self.trained, self.since, self.k, self.note = 0, None, 1, ""
        self.outer = tqdm(total=planned, initial=done, unit="net", desc=label,
                          disable=not enabled)
        self.inner = None

    def eta(self) -> float | None:
        """Seconds left for the whole invocation, or None before any speed is known."""
        measured = self.since is not None and time.monotonic() - self.since >= MEASURED_SECONDS
        speed = self.trained / (time.monotonic() - self.since) if measured else self.prior
        return self.left / speed if speed else None

    def group(self, note: str, k: int, start: int, iterations: int) -> "RunProgress":
        """A group of `k` networks trained from iteration `start` to `iterations` begins."""
        self.note, self.k, self.start = note, k, start
        self.inner = tqdm(total=iterations, initial=start, leave=False, unit="it",
                          mininterval=0.5, disable=not self.enabled)
        self._show()
        return self

    def begin(self, first: int, state: str = "") -> None:
        """`train` starts at iteration `first`: later than the group's start when it resumes
        from a saved group `state` (its file), whose iterations are not work left."""
        if first > self.start:
            self.say(f"resuming from {state}: {self.note}, iteration {first} of "
                     f"{self.inner.total}")
            self.left -= self.k * (first - self.start)
            self.inner.close()
            self.inner = tqdm(total=self.inner.total, initial=first, leave=False, unit="it",
                              mininterval=0.5, disable=not self.enabled)

    def update(self, n: int = 1) -> None:
        """`n` iterations of the group trained."""
        if self.since is None:
            self.since = time.monotonic()
        else:
            self.trained += self.k * n
        self.left -= self.k * n
        self.inner.update(n)
        if self.enabled and self.inner.n % 50 == 0:
            self._show()

    def done(self, networks: int) -> None:
        """The group ended: its `networks` are finished."""
        self.inner.close()
        self.outer.update(networks)

    def _show(self) -> None:
        eta = self.eta()
        self.outer.set_postfix_str(self.note + (f"; run ETA {clock(eta)}" if eta else ""))

    def say(self, line: str) -> None:
        if self.enabled:
            tqdm.write(line)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
        self.outer.close()


def complete_message(folder, done: int, arch: str, dataset: str, preset: str) -> str:
    """What `run` says of a complete folder (it trains nothing and writes nothing)."""
    return (f"{folder} is complete: {done} networks of {arch} on {dataset}, preset {preset}; "
            f"nothing to train.\n"
            f"Read it: python -m lth_utils claims --preset {preset} (the paper's claims), "
            f"the notebooks in notebooks/, or python build.py all --preset {preset} "
            f"(figures and report).\n"
            f"Train instead: add --out DIR (the same protocol in a folder of yours) or "
            f"--preset quick (a short run to try the pipeline).")
