"""The paper's constants, mirroring Figure 2 of Frankle & Carbin (arXiv 1803.03635v5).

Each row can be checked against the paper's table line by line. `weights` is the number of
prunable weights (conv and linear weights; biases are not pruned). The paper lists Conv-6 as
"1.7M" weights: that is an erratum, the architecture in the same table has 2,261,184.
"""
from dataclasses import dataclass

from .errors import LTHError


@dataclass(frozen=True)
class Architecture:
    name: str             # the paper's name
    convs: tuple          # conv widths; "M" is a 2x2 max pool
    fcs: tuple            # hidden fully-connected widths (the 10-way output layer follows)
    weights: int          # prunable weights, Figure 2
    iterations: int       # training iterations, Figure 2
    learning_rate: float  # Adam, Figure 2
    batch_size: int       # Figure 2
    prune_rate_conv: float    # per round, of each conv layer's remaining weights
    prune_rate_fc: float      # per round, of each hidden fc layer's remaining weights
    prune_rate_output: float  # the output layer is pruned at half the fc rate (Figure 2)
    rounds: int           # pruning rounds: the first round whose Pm is below 2% (Figs. 4, 5)
    dataset: str          # the dataset the paper trains it on


FIGURE_2 = {
    "lenet": Architecture("LeNet-300-100", (), (300, 100), 266_200,
                          50_000, 1.2e-3, 60, 0.0, 0.20, 0.10, 18, "mnist"),
    "conv2": Architecture("Conv-2", (64, 64, "M"), (256, 256), 4_300_992,
                          20_000, 2e-4, 60, 0.10, 0.20, 0.10, 18, "cifar10"),
    "conv4": Architecture("Conv-4", (64, 64, "M", 128, 128, "M"), (256, 256), 2_425_024,
                          25_000, 3e-4, 60, 0.10, 0.20, 0.10, 22, "cifar10"),
    "conv6": Architecture("Conv-6", (64, 64, "M", 128, 128, "M", 256, 256, "M"), (256, 256),
                          2_261_184, 30_000, 3e-4, 60, 0.15, 0.20, 0.10, 22, "cifar10"),
}

# Section 2 / Appendix G: 5,000 training examples are held out for validation, and the
# validation and test sets are evaluated every 100 training iterations.
VALIDATION_SIZE = 5_000
EVAL_EVERY = 100
TRIALS = 5

# Controls per point of the paper's figures, where it averages more than one per trial: each
# winning ticket is randomly reinitialized three times, 15 per point (Section 2, "Random
# reinitialization"; Figure 5's caption), and Figure 1 averages ten random sparse networks. This
# project runs every strategy once per trial (README: Faithfulness).
CONTROLS_PER_POINT = {"random_reinit": 15, "random_sparse": 10}

DATASETS = {
    # name: (channels, height, width, classes)
    "mnist": (1, 28, 28, 10),
    "cifar10": (3, 32, 32, 10),
}

# The paper does not state its input normalization (README: Faithfulness). The values of
# Hparams.normalization, with the names tables and figures give them: "standardize" (each
# channel by the training split's mean and standard deviation) or "scale" (pixels to [0, 1]).
NORMALIZATIONS = {"standardize": "standardized", "scale": "x/255"}
# This project's default for each dataset: x/255 for MNIST, chosen by the rule in the README
# (Faithfulness: "Input normalization"); CIFAR-10's was not varied.
NORMALIZATION = {"mnist": "scale", "cifar10": "standardize"}


def architecture(name: str) -> Architecture:
    """The Figure 2 row of `name`, or a one-line error naming the choices."""
    if name not in FIGURE_2:
        raise LTHError(f"unknown architecture {name!r}; choose one of {', '.join(FIGURE_2)}")
    return FIGURE_2[name]


def dataset_shape(name: str) -> tuple:
    """(channels, height, width, classes) of dataset `name`, or a one-line error."""
    if name not in DATASETS:
        raise LTHError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def normalization(dataset: str, name: str | None = None) -> str:
    """`name`, a value of Hparams.normalization (NORMALIZATIONS), or where None this project's
    default for `dataset` (NORMALIZATION); an unknown dataset or name is a one-line error."""
    dataset_shape(dataset)
    name = NORMALIZATION[dataset] if name is None else name
    if name not in NORMALIZATIONS:
        raise LTHError(f"unknown normalization {name!r}; "
                       f"choose one of {', '.join(NORMALIZATIONS)}")
    return name
