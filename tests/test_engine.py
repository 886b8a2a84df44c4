"""The stacked engine trains K networks as training them one by one would, and a network's
numbers do not depend on the group it is trained in.

In float64 the two paths agree to ~1e-12: the same mathematics, only summation order differs.
In float32 they agree to ~1e-6 for a hundred LeNet steps. Later, Adam amplifies rounding
differences (its update of a weight whose gradient is near zero is about +-lr, whatever the
gradient's size), and with fused Adam, whose rounding differs from the per-tensor loop's by an
ulp here and there, float32 runs drift apart chaotically after a few hundred steps, as float32
training on two machines does. The float32 comparisons cover 100 steps; float64 ones 300.
Against itself, the engine is exact: a network trained in a group of K gets, bit for bit, the
weights and recorded numbers it gets alone (K = 1).
"""
import pytest
import torch

from lth_utils.data import Splits, load_splits
from lth_utils.engine import SPARSE_BELOW, StackedNet
from lth_utils.models import LotteryNet
from lth_utils.pruning import random_masks
from lth_utils.evaluation import autocast, evaluate
from lth_utils.training import SingleNet, adam, train

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def networks(arch, dataset, k, dtype, densities=None):
    """k (mask, parameters) pairs: different inits, masks of 100%, 70%, 40% ... density (or
    `densities`)."""
    out = []
    for j in range(k):
        model = LotteryNet(arch, dataset).to(dtype)
        model.initialize(torch.Generator().manual_seed(j))
        shapes = {n: w.shape for n, w in model.weights().items()}
        density = densities[j] if densities else 1 - 0.3 * j
        counts = {n: int(w.numel() * density) for n, w in model.weights().items()}
        mask = random_masks(shapes, counts, torch.Generator().manual_seed(100 + j))
        model.apply_masks(mask)
        out.append((mask, model.parameters_state()))
    return out


def small_splits(dataset, data_dir, n, dtype, held_out=200):
    s = load_splits(dataset, data_dir)
    return Splits(s.train_x[:n].to(dtype), s.train_y[:n], s.val_x[:held_out].to(dtype),
                  s.val_y[:held_out], s.test_x[:held_out].to(dtype), s.test_y[:held_out])


def one_by_one(arch, dataset, nets, splits, steps, dtype):
    results = []
    for j, (mask, params) in enumerate(nets):
        single = SingleNet(LotteryNet(arch, dataset).to(dtype))
        single.load(0, mask, params)
        result, = train(single, splits, iterations=steps, learning_rate=1e-3, batch_size=60,
                        data_seeds=[7 + j], eval_every=50)
        results.append((result, single.export(0)))
    return results


def stacked(arch, dataset, nets, splits, steps, dtype, grouped=None, sparse_below=0.0,
            seeds=None, eval_every=50):
    net = StackedNet(arch, dataset, len(nets), sparse_below=sparse_below)
    if grouped is not None:
        net.grouped = grouped
    for t in net.parameters():
        t.data = t.data.to(dtype)
    for j, (mask, params) in enumerate(nets):
        net.load(j, mask, params)
    results = train(net, splits, iterations=steps, learning_rate=1e-3, batch_size=60,
                    data_seeds=seeds or [7 + j for j in range(len(nets))], eval_every=eval_every)
    return net, results


def compare(reference, net, results, tolerance):
    for j, ((ref, ref_params), got) in enumerate(zip(reference, results)):
        assert [(i, s) for i, s, _, _ in ref.evals] == [(i, s) for i, s, _, _ in got.evals]
        for (_, _, loss_a, acc_a), (_, _, loss_b, acc_b) in zip(ref.evals, got.evals):
            assert loss_a == pytest.approx(loss_b, abs=tolerance)
            assert acc_a == pytest.approx(acc_b, abs=max(tolerance, 1e-12))
        params = net.export(j)
        for key, value in ref_params.items():
            assert torch.allclose(value, params[key], atol=tolerance, rtol=0), key


@pytest.mark.parametrize("arch,dataset,steps,examples,held_out", [
    pytest.param("lenet", "mnist", 300, 3000, 200, marks=pytest.mark.slow),
    pytest.param("conv2", "cifar10", 3, 120, 60, marks=pytest.mark.slow)])
def test_engine_equals_one_by_one_float64(arch, dataset, steps, examples, held_out, data_dir,
                                          cifar_dir):
    dtype = torch.float64
    splits = small_splits(dataset, data_dir, examples, dtype, held_out)
    nets = networks(arch, dataset, 3, dtype)
    reference = one_by_one(arch, dataset, nets, splits, steps, dtype)
    net, results = stacked(arch, dataset, nets, splits, steps, dtype)
    compare(reference, net, results, 1e-9)


def test_engine_equals_one_by_one_float32_lenet(data_dir):
    dtype = torch.float32
    splits = small_splits("mnist", data_dir, 55_000, dtype, held_out=2000)
    nets = networks("lenet", "mnist", 3, dtype)
    reference = one_by_one("lenet", "mnist", nets, splits, 100, dtype)
    net, results = stacked("lenet", "mnist", nets, splits, 100, dtype)
    compare(reference, net, results, 1e-4)


@pytest.mark.parametrize("dtype,steps,tolerance", [
    pytest.param(torch.float64, 300, 1e-9, marks=pytest.mark.slow), (torch.float32, 100, 1e-4)])
def test_sparse_layers_equal_one_by_one(dtype, steps, tolerance, data_dir):
    """Every fully-connected layer forced onto the sparse path (`sparse_below=1`)."""
    splits = small_splits("mnist", data_dir, 3000, dtype)
    nets = networks("lenet", "mnist", 3, dtype)
    reference = one_by_one("lenet", "mnist", nets, splits, steps, dtype)
    net, results = stacked("lenet", "mnist", nets, splits, steps, dtype, sparse_below=1.0)
    assert all(net.sparse_layout(name, j) is not None for name in net.names for j in range(3))
    compare(reference, net, results, tolerance)


@pytest.mark.slow
def test_grouped_convolutions_equal_per_network_ones(cifar_dir):
    """The CUDA layout (one grouped convolution) computes what the CPU layout does."""
    dtype = torch.float64
    splits = small_splits("cifar10", cifar_dir, 120, dtype, held_out=60)
    nets = networks("conv4", "cifar10", 2, dtype)
    loop, loop_results = stacked("conv4", "cifar10", nets, splits, 2, dtype, grouped=False)
    grouped, grouped_results = stacked("conv4", "cifar10", nets, splits, 2, dtype, grouped=True)
    for j in range(2):
        for a, b in zip(loop_results[j].evals, grouped_results[j].evals):
            assert a[2] == pytest.approx(b[2], abs=1e-9)
        for key, value in loop.export(j).items():
            assert torch.allclose(value, grouped.export(j)[key], atol=1e-9, rtol=0)


def test_pruned_weights_and_their_adam_moments_stay_zero(data_dir):
    splits = small_splits("mnist", data_dir, 600, torch.float32)
    nets = networks("lenet", "mnist", 3, torch.float32)
    net = StackedNet("lenet", "mnist", 3)
    for j, (mask, params) in enumerate(nets):
        net.load(j, mask, params)
    optimizer = adam(net.parameters(), 1e-2)  # the optimizer training uses
    for step in range(5):
        logits = net.forward(splits.train_x[:180].view(3, 60, 1, 28, 28))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), splits.train_y[:180])
        optimizer.zero_grad()
        loss.backward()
        net.mask_gradients()
        optimizer.step()
    for name in net.names:
        for weight, mask in zip(net.weight[name], net.mask[name]):
            pruned = ~mask
            assert (weight[pruned] == 0).all()
            state = optimizer.state[weight]
            assert (state["exp_avg"][pruned] == 0).all()
            assert (state["exp_avg_sq"][pruned] == 0).all()
            assert (weight[mask] != 0).any()
        assert (~net.mask[name]).any()


def test_stacked_evaluation_equals_one_network_evaluation(data_dir):
    splits = small_splits("mnist", data_dir, 100, torch.float64)
    nets = networks("lenet", "mnist", 3, torch.float64)
    net, _ = stacked("lenet", "mnist", nets, splits, 0, torch.float64)
    together = net.evaluate(splits.test_x, splits.test_y)
    for j, (mask, params) in enumerate(nets):
        model = LotteryNet("lenet", "mnist").to(torch.float64)
        model.apply_masks(mask)
        model.load_parameters(params)
        loss, accuracy = evaluate(model, splits.test_x, splits.test_y)
        assert together[j][0] == pytest.approx(loss, abs=1e-12)
        assert together[j][1] == accuracy


@pytest.mark.parametrize("precision,tf32", [("tf32", True), ("float32", False),
                                            ("bfloat16", False)])
def test_precision_sets_tensor_cores_for_the_pass(precision, tf32):
    """float32 is the paper's arithmetic: no TF32 convolutions or matmuls on CUDA, where
    torch would otherwise use TF32 for convolutions."""
    torch.backends.cudnn.allow_tf32 = not tf32
    with autocast(precision, torch.device("cpu")):
        assert torch.backends.cudnn.allow_tf32 is tf32
        assert torch.backends.cuda.matmul.allow_tf32 is tf32


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("arch,dataset,steps,densities", [
    ("lenet", "mnist", 40, (1.0, 0.7, 0.4)),
    ("lenet", "mnist", 40, (0.05, 0.03, 0.5)),  # two on the sparse path, one dense
    pytest.param("conv2", "cifar10", 2, (1.0, 0.7, 0.4), marks=pytest.mark.slow)])
def test_a_network_trains_to_the_same_bits_in_any_group(arch, dataset, steps, densities,
                                                        threads, data_dir, cifar_dir):
    """Three networks trained as one group, and each alone (a group of one): the same weights
    and the same recorded (loss, accuracy), exactly, on one thread or two."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lenet = arch == "lenet"  # LeNet's held-out sets span two evaluation chunks
        splits = small_splits(dataset, data_dir if lenet else cifar_dir, 1200 if lenet else 120,
                              torch.float32, held_out=1500 if lenet else 60)
        nets = networks(arch, dataset, 3, torch.float32, densities)
        seeds = [7, 8, 9]
        group, together = stacked(arch, dataset, nets, splits, steps, torch.float32,
                                  sparse_below=SPARSE_BELOW, seeds=seeds, eval_every=20)
        if arch == "lenet" and densities[0] < SPARSE_BELOW:
            assert group.sparse_layout("1", 0) is not None and group.sparse_layout("1", 2) is None
        for j, net in enumerate(nets):
            alone, (result,) = stacked(arch, dataset, [net], splits, steps, torch.float32,
                                       sparse_below=SPARSE_BELOW, seeds=[seeds[j]],
                                       eval_every=20)
            assert result.evals == together[j].evals
            trained = alone.export(0)
            for key, value in group.export(j).items():
                assert torch.equal(value, trained[key]), key
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("densities", [(1.0, 0.2, 0.17), (0.05, 0.03, 0.5)])
def test_the_thread_count_does_not_change_a_networks_bits(densities, data_dir):
    """One group trained on one thread and on two: the same weights and recorded numbers,
    exactly, on the dense and the sparse path (what lets a long run change --threads on
    resuming without changing its arithmetic; checked on this project's CPU)."""
    before, got = torch.get_num_threads(), []
    splits = small_splits("mnist", data_dir, 1200, torch.float32, held_out=1500)
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            net, results = stacked("lenet", "mnist",
                                   networks("lenet", "mnist", 3, torch.float32, densities),
                                   splits, 40, torch.float32, sparse_below=SPARSE_BELOW,
                                   eval_every=20)
            got.append(([r.evals for r in results], [net.export(j) for j in range(3)]))
    finally:
        torch.set_num_threads(before)
    (evals_1, weights_1), (evals_2, weights_2) = got
    assert evals_1 == evals_2
    for one, two in zip(weights_1, weights_2):
        assert all(torch.equal(one[key], two[key]) for key in one)


@pytest.mark.parametrize("engine", ["reference", "stacked"])
def test_an_interrupted_run_resumes_to_the_same_numbers(engine, data_dir, tmp_path):
    """`should_stop` stops a run at an iteration boundary as Ctrl-C does: its state is saved,
    KeyboardInterrupt raised, and the run resumed from the state file ends as an uninterrupted
    one, bit for bit."""
    splits = small_splits("mnist", data_dir, 1200, torch.float32)
    nets = networks("lenet", "mnist", 2, torch.float32)[-1 if engine == "reference" else 0:]

    def run(state_file=None, should_stop=None):
        net = (SingleNet(LotteryNet("lenet", "mnist")) if engine == "reference"
               else StackedNet("lenet", "mnist", len(nets)))
        for j, (mask, params) in enumerate(nets):
            net.load(j, mask, params)
        results = train(net, splits, iterations=50, learning_rate=1e-3, batch_size=60,
                        data_seeds=[3, 4][:len(nets)], eval_every=20, start=5, snapshot_at=10,
                        state_file=state_file, should_stop=should_stop)
        return results, [net.export(j) for j in range(len(nets))]

    uninterrupted, weights = run()
    state = tmp_path / "group.state.pt"
    asked = []
    with pytest.raises(KeyboardInterrupt):
        run(state, lambda i: asked.append(i) or i == 27)
    assert asked == list(range(5, 28))
    assert torch.load(state, weights_only=True)["iteration"] == 27
    asked.clear()
    resumed, resumed_weights = run(state, asked.append)
    assert asked == list(range(27, 50))
    for a, b, wa, wb in zip(uninterrupted, resumed, weights, resumed_weights):
        assert a.evals == b.evals
        assert all(torch.equal(a.snapshot[k], b.snapshot[k]) for k in a.snapshot)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
