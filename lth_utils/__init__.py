"""lth_utils: a companion to Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks" (ICLR 2019, arXiv 1803.03635v5).

The names below are imported on first use, so that `python -m lth_utils --help` (and anything
else that needs no network) starts without importing torch.
"""
import importlib

_EXPORTS = {
    "FIGURE_2": "paper", "STRATEGIES": "config", "Hparams": "config", "resolve": "presets",
    "load_splits": "data", "LTHError": "errors", "Experiment": "experiment",
    "load_and_evaluate": "evaluation", "run_experiment": "experiment",
    "LotteryNet": "models", "count_weights": "models", "layer_counts": "pruning",
    "prune_layerwise": "pruning", "Store": "store", "results_folder": "store",
    "Unit": "strategies",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
