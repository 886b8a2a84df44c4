"""The Figure 2 networks, their initialization, and layer-wise magnitude pruning (no data)."""
import math

import pytest
import torch

from lth_utils.data import Splits
from lth_utils.models import LotteryNet, count_weights
from lth_utils.paper import FIGURE_2
from lth_utils.pruning import (layer_counts, layer_rates, mask_counts, percent_remaining,
                               prune_layerwise, prune_to_counts, random_masks)
from lth_utils.training import SingleNet, adam, train

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# Figure 2 of Frankle & Carbin, typed in from the paper (Conv-6's "1.7M" is an erratum).
PAPER_WEIGHTS = {"lenet": 266_200, "conv2": 4_300_992, "conv4": 2_425_024, "conv6": 2_261_184}


def net(arch):
    return LotteryNet(arch, FIGURE_2[arch].dataset)


def sizes_of(model):
    return {n: w.numel() for n, w in model.weights().items()}


def pm_after(arch, rounds):
    model = net(arch)
    sizes = sizes_of(model)
    rates = layer_rates(arch, model.layer_kinds())
    return percent_remaining(layer_counts(sizes, rates, rounds), sizes)


# --- architectures ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(PAPER_WEIGHTS))
def test_weight_count_is_figure_2(arch):
    assert FIGURE_2[arch].weights == PAPER_WEIGHTS[arch]
    assert count_weights(net(arch)) == PAPER_WEIGHTS[arch]


def test_figure_2_has_exactly_the_four_networks():
    assert set(FIGURE_2) == set(PAPER_WEIGHTS)


@pytest.mark.parametrize("arch", sorted(PAPER_WEIGHTS))
def test_layer_kinds(arch):
    spec = FIGURE_2[arch]
    model = net(arch)
    kinds = list(model.layer_kinds().values())
    n_convs = sum(1 for v in spec.convs if v != "M")
    assert kinds == ["conv"] * n_convs + ["fc"] * len(spec.fcs) + ["output"]
    assert list(model.layer_kinds()) == model.prunable_names
    for name, kind in model.layer_kinds().items():
        module = model.layers.get_submodule(name)
        assert isinstance(module, torch.nn.Conv2d if kind == "conv" else torch.nn.Linear)
    assert model.weight(model.prunable_names[-1]).shape[0] == 10


def test_lenet_layer_shapes_and_rates():
    model = net("lenet")
    assert [tuple(w.shape) for w in model.weights().values()] == [(300, 784), (100, 300),
                                                                 (10, 100)]
    rates = layer_rates("lenet", model.layer_kinds())
    assert list(rates.values()) == [0.20, 0.20, 0.10]


@pytest.mark.parametrize("arch", ["conv2", "conv4", "conv6"])
def test_conv_nets_are_3x3_padded_and_run(arch):
    model = net(arch)
    for name, kind in model.layer_kinds().items():
        if kind == "conv":
            conv = model.layers.get_submodule(name)
            assert conv.kernel_size == (3, 3) and conv.padding == (1, 1)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_masks_are_buffers_in_state_dict():
    model = net("lenet")
    state = model.state_dict()
    mask_keys = [k for k in state if k.startswith("mask_")]
    assert len(mask_keys) == len(model.prunable_names)
    for name in model.prunable_names:
        mask = model.mask(name)
        assert mask.dtype == torch.bool and mask.shape == model.weight(name).shape
        assert mask.all()
        assert any(state[k] is mask or state[k].data_ptr() == mask.data_ptr()
                   for k in mask_keys)


# --- the Pm ladder -----------------------------------------------------------------------------

@pytest.mark.parametrize("rounds, printed", [(3, "51.3"), (7, "21.1"), (12, "7.0"),
                                              (15, "3.6"), (18, "1.9")])
def test_lenet_pm_ladder(rounds, printed):
    assert f"{pm_after('lenet', rounds):.1f}" == printed


def test_pm_of_round_zero_is_100():
    assert pm_after("conv6", 0) == 100.0


@pytest.mark.parametrize("arch", sorted(PAPER_WEIGHTS))
def test_rounds_is_first_round_below_2_percent(arch):
    rounds = FIGURE_2[arch].rounds
    assert pm_after(arch, rounds) < 2.0
    assert pm_after(arch, rounds - 1) >= 2.0


def test_layer_counts_round_per_layer():
    sizes = {"a": 1000, "b": 15}
    rates = {"a": 0.2, "b": 0.1}
    assert layer_counts(sizes, rates, 1) == {"a": 800, "b": 15 - round(1.5)}
    assert layer_counts(sizes, rates, 2) == {"a": 640, "b": 13 - round(1.3)}
    assert layer_counts(sizes, rates, 0) == sizes


# --- magnitude pruning -------------------------------------------------------------------------

def distinct_weights(shapes, seed):
    """Weights with all-distinct magnitudes, so 'the smallest k' is unambiguous."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        n = math.prod(shape)
        magnitudes = (torch.randperm(n, generator=g).float() + 1) / n
        signs = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
        out[name] = (magnitudes * signs).view(shape)
    return out


SHAPES = {"conv": (8, 4, 3, 3), "fc": (30, 20), "out": (10, 30)}
RATES = {"conv": 0.15, "fc": 0.2, "out": 0.1}


def test_prune_layerwise_from_dense():
    weights = distinct_weights(SHAPES, 0)
    dense = {n: torch.ones(s, dtype=torch.bool) for n, s in SHAPES.items()}
    new = prune_layerwise(weights, dense, RATES)
    for name, w in weights.items():
        n = w.numel()
        assert int(new[name].sum()) == n - round(RATES[name] * n)
        assert new[name].dtype == torch.bool and new[name].shape == w.shape
        # the survivors are exactly the largest magnitudes
        assert w.abs()[new[name]].min() > w.abs()[~new[name]].max()


def test_prune_layerwise_from_sparse_never_revives_and_drops_smallest_survivors():
    weights = distinct_weights(SHAPES, 1)
    g = torch.Generator().manual_seed(2)
    masks = {n: torch.rand(s, generator=g) < 0.6 for n, s in SHAPES.items()}
    # pruned weights are given the largest magnitudes of all: they must still stay pruned
    weights = {n: torch.where(masks[n], w, 100.0 + w.abs()) for n, w in weights.items()}
    new = prune_layerwise(weights, masks, RATES)
    for name, w in weights.items():
        remaining = int(masks[name].sum())
        removed = masks[name] & ~new[name]
        assert int(removed.sum()) == round(RATES[name] * remaining)
        assert not (new[name] & ~masks[name]).any(), "a pruned weight came back"
        assert int(new[name].sum()) == remaining - round(RATES[name] * remaining)
        assert w.abs()[new[name]].min() > w.abs()[removed].max()


def test_prune_layerwise_keeps_surviving_zero_weights_over_pruned_ones():
    # a surviving weight that is exactly 0 still outranks pruned positions
    w = {"l": torch.tensor([0.0, 0.0, 5.0, 0.0, 3.0])}
    m = {"l": torch.tensor([True, False, True, False, True])}
    new = prune_layerwise(w, m, {"l": 0.0})
    assert torch.equal(new["l"], m["l"])
    new = prune_layerwise(w, m, {"l": 0.4})  # round(1.2) = 1 removed: the surviving zero
    assert new["l"].tolist() == [False, False, True, False, True]


def test_iterated_pruning_matches_layer_counts():
    weights = distinct_weights(SHAPES, 3)
    masks = {n: torch.ones(s, dtype=torch.bool) for n, s in SHAPES.items()}
    sizes = {n: math.prod(s) for n, s in SHAPES.items()}
    for r in range(1, 8):
        masks = prune_layerwise(weights, masks, RATES)
        assert mask_counts(masks) == layer_counts(sizes, RATES, r)


def test_prune_to_counts_exact_and_largest():
    weights = distinct_weights(SHAPES, 4)
    counts = {"conv": 100, "fc": 1, "out": 0}
    masks = prune_to_counts(weights, counts)
    assert mask_counts(masks) == counts
    w = weights["conv"]
    assert w.abs()[masks["conv"]].min() > w.abs()[~masks["conv"]].max()
    assert masks["fc"].view(-1)[weights["fc"].abs().argmax()]
    full = prune_to_counts(weights, {n: math.prod(s) for n, s in SHAPES.items()})
    assert all(m.all() for m in full.values())


def test_random_masks_exact_counts_and_deterministic():
    counts = {"conv": 123, "fc": 450, "out": 7}
    a = random_masks(SHAPES, counts, torch.Generator().manual_seed(5))
    b = random_masks(SHAPES, counts, torch.Generator().manual_seed(5))
    c = random_masks(SHAPES, counts, torch.Generator().manual_seed(6))
    assert mask_counts(a) == counts
    assert mask_counts(c) == counts
    assert all(torch.equal(a[n], b[n]) for n in SHAPES)
    assert not all(torch.equal(a[n], c[n]) for n in SHAPES)
    assert all(a[n].shape == SHAPES[n] and a[n].dtype == torch.bool for n in SHAPES)


# --- initialization -------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["lenet", "conv2"])
def test_glorot_gaussian_init_and_zero_biases(arch):
    model = net(arch)
    model.initialize(torch.Generator().manual_seed(0))
    for name in model.prunable_names:
        module = model.layers.get_submodule(name)
        w = module.weight.detach()
        receptive = w[0][0].numel()
        fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
        expected = math.sqrt(2.0 / (fan_in + fan_out))
        tolerance = 0.05 if w.numel() >= 10_000 else 0.15
        assert w.std().item() == pytest.approx(expected, rel=tolerance), name
        assert abs(w.mean().item()) < 4 * expected / math.sqrt(w.numel()) + 1e-6, name
        assert torch.count_nonzero(module.bias) == 0, name


def test_init_is_deterministic_per_seed_and_respects_masks():
    a, b, c = net("lenet"), net("lenet"), net("lenet")
    masks = random_masks({n: w.shape for n, w in a.weights().items()},
                         {n: w.numel() // 3 for n, w in a.weights().items()},
                         torch.Generator().manual_seed(0))
    a.apply_masks(masks)
    a.initialize(torch.Generator().manual_seed(1))
    b.initialize(torch.Generator().manual_seed(1))
    c.initialize(torch.Generator().manual_seed(2))
    for n in a.prunable_names:
        assert torch.equal(a.weight(n), b.weight(n) * masks[n])
        assert (a.weight(n)[~masks[n]] == 0).all()
        assert not torch.equal(b.weight(n), c.weight(n))


# --- masks under Adam --------------------------------------------------------------------------

def random_splits(n_train=600, n_eval=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = lambda n: torch.randn(n, 1, 28, 28, generator=g)  # noqa: E731
    y = lambda n: torch.randint(0, 10, (n,), generator=g)  # noqa: E731
    return Splits(x(n_train), y(n_train), x(n_eval), y(n_eval), x(n_eval), y(n_eval))


def sparse_lenet(seed=0, keep=0.3):
    model = net("lenet")
    shapes = {n: w.shape for n, w in model.weights().items()}
    counts = {n: int(keep * w.numel()) for n, w in model.weights().items()}
    masks = random_masks(shapes, counts, torch.Generator().manual_seed(seed))
    model.apply_masks(masks)
    model.initialize(torch.Generator().manual_seed(seed + 1))
    return model, masks


def test_pruned_weights_stay_zero_through_training():
    model, masks = sparse_lenet()
    before = {n: w.clone() for n, w in model.weights().items()}
    result, = train(SingleNet(model), random_splits(), iterations=20, learning_rate=1.2e-3,
                    batch_size=60, data_seeds=[0], eval_every=10)
    for n, w in model.weights().items():
        assert (w[~masks[n]] == 0.0).all(), n
        assert not torch.equal(w[masks[n]], before[n][masks[n]]), f"{n} did not train"
        assert torch.equal(model.mask(n), masks[n])
    # evaluations at 0, 10 and 20 on val and test, and the training set once at the end
    assert sorted((it, s) for it, s, *_ in result.evals) == sorted(
        [(i, s) for i in (0, 10, 20) for s in ("val", "test")] + [(20, "train")])


def test_adam_state_is_zero_at_pruned_positions():
    model, masks = sparse_lenet(seed=3)
    splits = random_splits(seed=1)
    optimizer = adam(model.parameters(), 1e-2)  # the optimizer training uses
    for step in range(5):
        x, y = splits.train_x[step * 60:(step + 1) * 60], splits.train_y[step * 60:(step + 1) * 60]
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        model.mask_gradients()
        for n in model.prunable_names:
            assert (model.weight(n).grad[~masks[n]] == 0).all(), n
        optimizer.step()
    for n in model.prunable_names:
        w = model.weight(n)
        state = optimizer.state[w]
        assert (state["exp_avg"][~masks[n]] == 0).all(), n
        assert (state["exp_avg_sq"][~masks[n]] == 0).all(), n
        assert (state["exp_avg_sq"][masks[n]] != 0).any(), n
        assert (w.detach()[~masks[n]] == 0.0).all(), n
