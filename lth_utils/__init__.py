"""lth_utils: a companion to Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks" (ICLR 2019, arXiv 1803.03635v5)."""
from .config import STRATEGIES, Hparams, resolve
from .data import load_splits
from .errors import LTHError
from .experiment import Experiment, load_and_evaluate, run_experiment
from .models import LotteryNet, count_weights
from .paper import FIGURE_2
from .pruning import layer_counts, prune_layerwise

__all__ = ["FIGURE_2", "STRATEGIES", "Experiment", "Hparams", "LTHError", "LotteryNet",
           "count_weights", "layer_counts", "load_and_evaluate", "load_splits", "prune_layerwise",
           "resolve", "run_experiment"]
