"""Where and how a run was made: the project's commit, the machine, the device, torch, the
engine (recorded in params.yaml and provenance.jsonl, and shown by the report)."""
import contextlib
import os
import platform
import subprocess
from pathlib import Path

import torch


def git_commit() -> str:
    """The project's commit, with `+dirty` if tracked files differ from it; `unknown` outside
    a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def cpuinfo(field: str) -> str | None:
    """The first value of `field` ('model name', 'vendor_id', ...) in /proc/cpuinfo; None where
    it has none (or off Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == field:
                return value.strip()
    return None


def machine() -> str:
    """The CPU model and core count (what timings depend on)."""
    model = cpuinfo("model name") or platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def provenance(device, engine: str) -> dict:
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"commit": git_commit(), "machine": machine(), "device": name,
            "threads": torch.get_num_threads(), "torch": str(torch.__version__),
            "engine": engine}


