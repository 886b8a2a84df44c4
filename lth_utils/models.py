"""The paper's networks (Figure 2) as plain PyTorch modules with their pruning masks as buffers.

LeNet-300-100 is fully connected; Conv-2/4/6 are VGG-like: 3x3 convolutions with padding 1,
ReLU, 2x2 max pools, then fully-connected layers of 256, 256 and a 10-way output. Weights get
the paper's Gaussian Glorot initialization; biases start at zero and are never pruned.
"""
import math

import torch
from torch import nn

from .paper import architecture, dataset_shape


def build_layers(arch: str, input_shape: tuple, num_classes: int) -> nn.Sequential:
    """The layer stack of `arch` (a key of FIGURE_2) for images of `input_shape` (C, H, W)."""
    spec = architecture(arch)
    channels, height, width = input_shape
    layers = []
    for v in spec.convs:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU()]
            channels = v
    layers.append(nn.Flatten())
    features = channels * height * width
    for v in spec.fcs:
        layers += [nn.Linear(features, v), nn.ReLU()]
        features = v
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def _buffer_name(weight_name: str) -> str:
    return "mask_" + weight_name.replace(".", "_")


class LotteryNet(nn.Module):
    """One of the paper's networks with a boolean mask per prunable weight.

    The masks are buffers (they travel with `state_dict` and `.to(device)`). They act in two
    places, as in every training loop of this project (`training.train`): `apply_masks` zeroes
    pruned weights, and `mask_gradients`, called after each backward pass, zeroes their
    gradients, hence no Adam update (its moments stay exactly zero there).
    """

    def __init__(self, arch: str, dataset: str):
        super().__init__()
        *shape, classes = dataset_shape(dataset)
        self.arch, self.dataset = arch, dataset
        self.layers = build_layers(arch, tuple(shape), classes)
        self.prunable_names = [n for n, m in self.layers.named_modules()
                               if isinstance(m, (nn.Conv2d, nn.Linear))]
        for name in self.prunable_names:
            weight = self.layers.get_submodule(name).weight
            self.register_buffer(_buffer_name(name), torch.ones_like(weight, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    @staticmethod
    def weight_key(name: str) -> str:
        """The key of layer `name`'s weight in `parameters_state()`."""
        return f"layers.{name}.weight"

    def weight(self, name: str) -> nn.Parameter:
        return self.layers.get_submodule(name).weight

    def mask(self, name: str) -> torch.Tensor:
        return getattr(self, _buffer_name(name))

    def layer_kinds(self) -> dict:
        """'conv', 'fc' or 'output' for each prunable layer, in order (Figure 2's rates)."""
        kinds = {n: "conv" if isinstance(self.layers.get_submodule(n), nn.Conv2d) else "fc"
                 for n in self.prunable_names}
        kinds[self.prunable_names[-1]] = "output"
        return kinds

    def weights(self) -> dict:
        """Prunable weights by layer name (detached views)."""
        return {n: self.weight(n).detach() for n in self.prunable_names}

    def masks(self) -> dict:
        return {n: self.mask(n) for n in self.prunable_names}

    @torch.no_grad()
    def apply_masks(self, masks: dict | None = None) -> None:
        """Install `masks` (if given) and zero every pruned weight."""
        for name in self.prunable_names:
            if masks is not None:
                self.mask(name).copy_(masks[name])
            self.weight(name).mul_(self.mask(name))

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """Zero the gradients of pruned weights (after `backward`, before the optimizer step)."""
        for name in self.prunable_names:
            self.weight(name).grad.mul_(self.mask(name))

    @torch.no_grad()
    def initialize(self, generator: torch.Generator) -> None:
        """Gaussian Glorot initialization of weights (Glorot & Bengio 2010), zero biases."""
        for name in self.prunable_names:
            module = self.layers.get_submodule(name)
            w = module.weight
            receptive = w[0][0].numel()
            std = math.sqrt(2.0 / (w.shape[0] * receptive + w.shape[1] * receptive))
            w.copy_(torch.randn(w.shape, generator=generator) * std)
            module.bias.zero_()
        self.apply_masks()

    def parameters_state(self) -> dict:
        """Copy of the weights and biases (no masks): what 'reset to initialization' restores."""
        return {k: v.detach().clone() for k, v in self.named_parameters()}

    @torch.no_grad()
    def load_parameters(self, state: dict) -> None:
        for k, v in self.named_parameters():
            v.copy_(state[k])
        self.apply_masks()


def count_weights(model: LotteryNet) -> int:
    """Prunable weights (conv and linear weights, no biases), as counted in Figure 2."""
    return sum(model.weight(n).numel() for n in model.prunable_names)
