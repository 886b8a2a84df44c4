"""Benchmark: the stacked engine against one-network-at-a-time training loops.

    python -m lth_utils.bench [--arch lenet] [--models 1 5 10 20] [--iterations 500]
                              [--device cpu] [--threads 1 ...] [--repeats 3] [--density 0.5]

Every contender does the same work per network: `iterations` Adam steps on batches of 60 and
the paper's evaluation of all validation and test examples every 100 iterations (and at the
first and last one). Contenders run interleaved (A, B, C, A, B, C, ...) so machine noise hits
them alike, and each figure is the median over repeats:
  typical  what public implementations do: nn.Module, a DataLoader over a TensorDataset,
           torch's default Adam, masks re-applied after each step, evaluation through
           DataLoaders;
  tuned    this project's loop (training.train) on one LotteryNet (training.SingleNet):
           batches by tensor indexing, masked gradients, fused Adam, evaluation in chunks;
  engine   K networks as one batched computation (engine.StackedNet, the same loop).
It prints model-iterations per second, the engine's ratios to the two loops, and achieved
FLOP/s against the dense matmul FLOP/s measured in the same run. With several `--threads`,
the engine runs once per thread count (interleaved too) while the loops and the peak use the
first. Masks are random and keep `--density` of each layer; at the engine's sparse threshold
or below, the dense engine runs beside the sparse one. The last line is machine-readable.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .data import load_splits
from .engine import SPARSE_BELOW, StackedNet
from .models import LotteryNet, build_layers
from .paper import DATASETS, FIGURE_2
from .pruning import random_masks
from .evaluation import PRECISIONS, set_tensor_cores
from .training import SingleNet, train

BATCH = 60
EVAL_EVERY = 100


def forward_macs(arch: str, dataset: str) -> int:
    """Multiply-accumulates of one example's forward pass through the dense network."""
    macs, x = 0, torch.zeros(1, *DATASETS[dataset][:3])
    for module in LotteryNet(arch, dataset).layers:
        y = module(x)
        if isinstance(module, nn.Conv2d):
            macs += y.numel() * module.in_channels * 9
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features
        x = y
    return macs


def matmul_flops(device, seconds: float = 1.0, n: int = 1024) -> float:
    """Dense float32 matmul FLOP/s of this device, as the peak that achieved FLOP/s is held to."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * count / (time.perf_counter() - start)


def networks(arch, dataset, k, device, density=0.5):
    """k networks with random masks keeping `density` of each layer, each with its own
    initialization."""
    out = []
    for j in range(k):
        model = LotteryNet(arch, dataset)
        model.initialize(torch.Generator().manual_seed(j))
        shapes = {n: w.shape for n, w in model.weights().items()}
        counts = {n: round(w.numel() * density) for n, w in model.weights().items()}
        mask = random_masks(shapes, counts, torch.Generator().manual_seed(1000 + j))
        out.append(({n: m.to(device) for n, m in mask.items()},
                    {k_: v.to(device) for k_, v in model.parameters_state().items()}))
    return out


def typical_loop(arch, dataset, splits, iterations, learning_rate, device, density):
    """The usual public implementation: DataLoaders, masks re-applied after every step."""
    set_tensor_cores("float32")
    (mask, params), = networks(arch, dataset, 1, device, density)
    model = build_layers(arch, DATASETS[dataset][:3], DATASETS[dataset][3]).to(device)
    model.load_state_dict({k.removeprefix("layers."): v for k, v in params.items()})
    masked = [(module.weight, mask[name]) for name, module in model.named_modules()
              if name in mask]
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    train_loader = DataLoader(TensorDataset(splits.train_x, splits.train_y), batch_size=BATCH,
                              shuffle=True, drop_last=True)
    held_out = [DataLoader(TensorDataset(x, y), batch_size=1000)
                for x, y in ((splits.val_x, splits.val_y), (splits.test_x, splits.test_y))]

    def evaluate():
        model.eval()
        with torch.no_grad():
            for loader in held_out:
                loss, correct, seen = 0.0, 0, 0
                for x, y in loader:
                    out = model(x)
                    loss += F.cross_entropy(out, y, reduction="sum").item()
                    correct += (out.argmax(1) == y).sum().item()
                    seen += len(y)
        model.train()

    step = 0
    evaluate()
    while step < iterations:
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for weight, m in masked:
                    weight.mul_(m)
            step += 1
            if step % EVAL_EVERY == 0 or step == iterations:
                evaluate()
            if step == iterations:
                break


def tuned_loop(arch, dataset, splits, iterations, learning_rate, device, density):
    (mask, params), = networks(arch, dataset, 1, device, density)
    model = LotteryNet(arch, dataset).to(device)
    model.apply_masks(mask)
    model.load_parameters(params)
    train(SingleNet(model), splits, iterations=iterations, learning_rate=learning_rate,
          batch_size=BATCH, data_seeds=[1], eval_every=EVAL_EVERY, train_accuracy=False)


def engine_loop(arch, dataset, splits, iterations, learning_rate, device, k, precision, density,
                sparse_below=SPARSE_BELOW):
    net = StackedNet(arch, dataset, k, device, sparse_below)
    for j, (mask, params) in enumerate(networks(arch, dataset, k, device, density)):
        net.load(j, mask, params)
    train(net, splits, iterations=iterations, learning_rate=learning_rate, batch_size=BATCH,
          data_seeds=list(range(k)), eval_every=EVAL_EVERY, train_accuracy=False,
          precision=precision)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lth_utils.bench", description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="lenet", choices=list(FIGURE_2))
    p.add_argument("--models", type=int, nargs="+", default=[1, 5, 10, 20])
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="the engine's precision (the loops it is compared with stay float32)")
    p.add_argument("--density", type=float, default=0.5,
                   help="fraction of each layer's weights kept (random masks; default 0.5); at "
                        f"{SPARSE_BELOW} or less the engine's sparse layers run, and the dense "
                        "engine runs beside it for comparison")
    p.add_argument("--data-dir")
    p.add_argument("--skip-typical", action="store_true", help="leave out the typical loop")
    args = p.parse_args(argv)
    threads = args.threads[0]
    device = torch.device(args.device)
    spec = FIGURE_2[args.arch]
    splits = load_splits(spec.dataset, args.data_dir, device=device)
    lr = spec.learning_rate
    n = args.iterations

    d = args.density
    if not 0 < d <= 1:
        p.error("--density must be in (0, 1]")
    contenders = {} if args.skip_typical else {
        "typical": (1, threads, lambda: typical_loop(args.arch, spec.dataset, splits, n, lr,
                                                     device, d))}
    contenders["tuned"] = (1, threads, lambda: tuned_loop(args.arch, spec.dataset, splits, n, lr,
                                                          device, d))
    for t in args.threads:
        for k in args.models:
            name = f"engine K={k}" + (f" t{t}" if t != threads else "")
            contenders[name] = (k, t, lambda k=k: engine_loop(
                args.arch, spec.dataset, splits, n, lr, device, k, args.precision, d))
            if d <= SPARSE_BELOW:
                contenders[name + " dense"] = (k, t, lambda k=k: engine_loop(
                    args.arch, spec.dataset, splits, n, lr, device, k, args.precision, d, 0.0))
    seconds = {name: [] for name in contenders}
    peaks = []
    print(f"{args.arch}: {n} iterations per network, batch {BATCH}, evaluation of "
          f"{len(splits.val_x) + len(splits.test_x)} examples every {EVAL_EVERY}; "
          f"{args.device}, {'/'.join(map(str, args.threads))} thread(s), engine in "
          f"{args.precision}; masks keep {d:.0%} of each layer; "
          f"{args.repeats} interleaved repeats",
          flush=True)
    for repeat in range(args.repeats):
        torch.set_num_threads(threads)
        peaks.append(matmul_flops(device))
        for name, (_, t, run) in contenders.items():
            torch.set_num_threads(t)
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
            print(f"  repeat {repeat + 1}: {name:<12} {seconds[name][-1]:8.2f} s", flush=True)

    macs = forward_macs(args.arch, spec.dataset)
    evals = len({0, n} | set(range(EVAL_EVERY, n, EVAL_EVERY)))
    flops_per_network = 6 * macs * BATCH * n + 2 * macs * evals * (len(splits.val_x) +
                                                                    len(splits.test_x))
    peak = statistics.median(peaks)
    rate = {name: k * n / statistics.median(seconds[name])
            for name, (k, _, _) in contenders.items()}
    print(f"\ndense matmul peak: {peak / 1e9:.1f} GFLOP/s; "
          f"{6 * macs * BATCH / 1e6:.1f} MFLOP per training iteration, "
          f"{flops_per_network / n / 1e6:.1f} MFLOP per iteration with evaluation")
    print(f"{'contender':<20}{'model-it/s':>12}{'GFLOP/s':>10}{'of peak':>9}"
          f"{'x typical':>11}{'x tuned':>9}")
    for name in contenders:
        achieved = rate[name] * flops_per_network / n
        vs_typical = f"{rate[name] / rate['typical']:.2f}" if "typical" in rate else "-"
        print(f"{name:<20}{rate[name]:>12.1f}{achieved / 1e9:>10.1f}{achieved / peak:>9.1%}"
              f"{vs_typical:>11}{rate[name] / rate['tuned']:>9.2f}")
    k10 = "engine K=10" if "engine K=10" in rate else f"engine K={args.models[-1]}"
    typical = rate[k10] / rate["typical"] if "typical" in rate else float("nan")
    print(f"speedup_vs_typical_k10={typical:.2f} speedup_vs_tuned_k10="
          f"{rate[k10] / rate['tuned']:.2f} flops_fraction="
          f"{rate[k10] * flops_per_network / n / peak:.3f}")


if __name__ == "__main__":
    main()
