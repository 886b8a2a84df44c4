"""The fast engine: K masked networks of one architecture trained as one batched computation.

The trials x strategies of one pruning round are independent networks of the same shape.
Each network's weights and biases are tensors of their own (so one Adam, elementwise, is K
optimizers, each rounding as it would alone); every step stacks them ([K, out, in] per layer)
so that K small matrix products run as one batched product (`torch.baddbmm`) and, on CUDA, K
convolutions as one grouped convolution. Evaluation runs network by network on fixed chunks of
examples. A network's numbers are thus those it gets alone (K = 1) bit for bit, whatever the
others of its group, and those of `training.SingleNet` (one LotteryNet) up to float summation
order; tests/test_engine.py checks both. `training.train` is the loop that trains either.
"""
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .models import LotteryNet
from .evaluation import evaluate

# On a CPU, a network's fully-connected layer that keeps at most this fraction of its weights
# runs on the unpruned weights only (`_SparseLinear`); denser layers run as dense batched
# products. Timed side by side on this project's CPU (`python -m lth_utils.bench
# --models 20 --density D`), the sparse layers made LeNet's K = 20 step 1.24x faster at 5%
# density and 1.41x at 2%, and were no faster at 10-20%: LeNet rounds 13 on (Pm < 6%) use them.
SPARSE_BELOW = 0.06


class _SparseLinear(torch.autograd.Function):
    """y = x W^T + b for one network, computed on the unpruned weights only: the product as a
    sparse (CSR) x dense product, the weight gradient sampled at the unpruned positions
    (elsewhere it is zero: those weights are pruned). `x` is [B, in], `weight` [out, in],
    `layout` is `StackedNet.sparse_layout`'s."""

    @staticmethod
    def forward(ctx, x, weight, bias, layout):
        index, crow, col = layout
        with warnings.catch_warnings():  # torch calls its CSR support beta, once per process
            warnings.simplefilter("ignore", UserWarning)
            mat = torch.sparse_csr_tensor(crow, col, weight.reshape(-1)[index], weight.shape)
        ctx.save_for_backward(x, weight)
        ctx.mat, ctx.index = mat, index
        return (mat @ x.t()).t() + bias

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        sampled = torch.sparse.sampled_addmm(ctx.mat, grad.t().contiguous(), x, beta=0.0)
        grad_weight = torch.zeros_like(weight)
        grad_weight.view(-1)[ctx.index] = sampled.values()
        return grad_x, grad_weight, grad.sum(0), None


class StackedNet:
    """K copies of one of the paper's networks, each with its own weights and mask
    (`weight[name][j]`: network j's [out, in(, 3, 3)] leaf tensor; `mask[name]`: [K, ...])."""

    def __init__(self, arch: str, dataset: str, k: int, device="cpu",
                 sparse_below: float = SPARSE_BELOW):
        template = LotteryNet(arch, dataset)
        self.arch, self.dataset, self.k = arch, dataset, k
        self.names = template.prunable_names
        self.layers = []  # ("conv" | "linear", name) | ("relu",) | ("pool",) | ("flatten",)
        self.weight, self.bias, self.mask = {}, {}, {}
        for name, module in template.layers.named_children():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                self.layers.append(("conv" if isinstance(module, nn.Conv2d) else "linear", name))
                shape = module.weight.shape
                self.weight[name] = [torch.zeros(shape, device=device, requires_grad=True)
                                     for _ in range(k)]
                self.bias[name] = [torch.zeros(shape[0], device=device, requires_grad=True)
                                   for _ in range(k)]
                self.mask[name] = torch.ones(k, *shape, dtype=torch.bool, device=device)
            elif isinstance(module, nn.ReLU):
                self.layers.append(("relu",))
            elif isinstance(module, nn.MaxPool2d):
                self.layers.append(("pool",))
            elif isinstance(module, nn.Flatten):
                self.layers.append(("flatten",))
        # One grouped convolution for all K networks on CUDA; on a CPU, where convolutions
        # are compute-bound, a convolution per network (grouped ones, timed side by side with
        # K = 5 on this project's CPU, were about 15% slower forward and backward).
        self.grouped = torch.device(device).type == "cuda"
        # Sparse fully-connected layers: on a CPU only (where they were measured), 0 turns
        # them off; their layouts are built on first use, after the masks are loaded.
        self.sparse_below = sparse_below if torch.device(device).type == "cpu" else 0.0
        self._layouts = {}

    def parameters(self) -> list:
        """Every network's leaves, network by network, in LotteryNet's order."""
        return [t for j in range(self.k) for name in self.names
                for t in (self.weight[name][j], self.bias[name][j])]

    @torch.no_grad()
    def load(self, j: int, mask: dict, parameters: dict) -> None:
        """Network j gets `mask` and `parameters` (LotteryNet names); pruned weights become 0."""
        for name in self.names:
            self._layouts.pop((name, j), None)
            weight = parameters[LotteryNet.weight_key(name)]
            self.mask[name][j] = mask[name]
            self.weight[name][j].copy_(weight * mask[name].to(weight.device))
            self.bias[name][j].copy_(parameters[f"layers.{name}.bias"])

    def export(self, j: int) -> dict:
        """Network j's parameters, named as in LotteryNet.parameters_state()."""
        state = {}
        for name in self.names:
            state[LotteryNet.weight_key(name)] = self.weight[name][j].detach().clone()
            state[f"layers.{name}.bias"] = self.bias[name][j].detach().clone()
        return state

    def sparse_layout(self, name: str, j: int):
        """(flat indices of the unpruned weights, CSR row offsets, CSR columns) of network j's
        linear layer `name` if it runs sparse, else None: a function of its own mask only."""
        if (name, j) not in self._layouts:
            mask, layout = self.mask[name][j], None
            if mask.sum().item() <= self.sparse_below * mask.numel():
                crow = torch.cat([mask.new_zeros(1, dtype=torch.long), mask.sum(1).cumsum(0)])
                layout = (mask.reshape(-1).nonzero().squeeze(1), crow, mask.nonzero()[:, 1])
            self._layouts[name, j] = layout
        return self._layouts[name, j]

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """Pruned weights get zero gradient, so Adam never moves them (models.LotteryNet)."""
        for name in self.names:
            for weight, mask in zip(self.weight[name], self.mask[name]):
                weight.grad.mul_(mask)

    def _sparse(self, name: str, j: int, device):
        """Network j's layout for layer `name`, or None where it runs dense (and under bf16)."""
        return None if torch.is_autocast_enabled(device.type) else self.sparse_layout(name, j)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [K, B, classes] of the K networks, network j on its batch x[j]; `x` is
        [K, B, C, H, W]."""
        k, b = x.shape[:2]
        h = x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])  # [B, K*C, H, W]
        for layer in self.layers:
            kind = layer[0]
            if kind == "conv":
                w, bias = self.weight[layer[1]], self.bias[layer[1]]
                if self.grouped:
                    h = F.conv2d(h, torch.stack(w).flatten(0, 1), torch.stack(bias).flatten(),
                                 padding=1, groups=k)
                else:
                    h = torch.cat([F.conv2d(part, w[j], bias[j], padding=1)
                                   for j, part in enumerate(h.chunk(k, dim=1))], dim=1)
            elif kind == "relu":
                h = F.relu(h)
            elif kind == "pool":
                h = F.max_pool2d(h, 2)
            elif kind == "flatten":  # [B, K*C, H, W] -> [K, B, C*H*W]
                h = h.reshape(b, k, -1).transpose(0, 1)
            else:
                h = self._linear(layer[1], h)
        return h

    def _linear(self, name: str, h: torch.Tensor) -> torch.Tensor:
        """[K, B, in] -> [K, B, out]: the dense networks as one batched product, the sparse
        ones one by one."""
        w, bias = self.weight[name], self.bias[name]
        sparse = {j: s for j in range(self.k) if (s := self._sparse(name, j, h.device))}
        if not sparse:
            return torch.baddbmm(torch.stack(bias).unsqueeze(1), h,
                                 torch.stack(w).transpose(1, 2))
        out = {j: _SparseLinear.apply(h[j], w[j], bias[j], s) for j, s in sparse.items()}
        dense = [j for j in range(self.k) if j not in sparse]
        if dense:
            out |= zip(dense, torch.baddbmm(torch.stack([bias[j] for j in dense]).unsqueeze(1),
                                            h[dense], torch.stack([w[j] for j in dense])
                                            .transpose(1, 2)).unbind(0))
        return torch.stack([out[j] for j in range(self.k)])

    def forward_one(self, j: int, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, classes] of network j alone on images `x` [B, C, H, W] (evaluation)."""
        h = x
        for layer in self.layers:
            kind = layer[0]
            if kind == "conv":
                h = F.conv2d(h, self.weight[layer[1]][j], self.bias[layer[1]][j], padding=1)
            elif kind == "relu":
                h = F.relu(h)
            elif kind == "pool":
                h = F.max_pool2d(h, 2)
            elif kind == "flatten":
                h = h.flatten(1)
            else:
                w, bias = self.weight[layer[1]][j], self.bias[layer[1]][j]
                layout = self._sparse(layer[1], j, h.device)
                h = (_SparseLinear.apply(h, w, bias, layout) if layout is not None
                     else F.linear(h, w, bias))
        return h

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, precision: str = "float32") -> list:
        """[(mean loss, accuracy)] of each of the K networks on x [N, C, H, W], y [N]: network
        by network, in chunks of EVAL_CHUNK examples, so that none depends on the others."""
        return [evaluate(lambda chunk, j=j: self.forward_one(j, chunk), x, y, precision)
                for j in range(self.k)]
