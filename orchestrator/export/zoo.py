"""The model zoo, in plain torch (PyPI torchvision does not load beside our torch).

Architectures follow their reference definitions so parameter counts match the
published figures; weights are random with a fixed seed because latency does not
depend on weight values and nothing may be downloaded at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from orchestrator.export.zoo_index import WEIGHTS_SEED

_SEED_LOCK = threading.Lock()


@contextmanager
def seeded_init() -> Iterator[None]:
    """Draw initial weights from a freshly seeded RNG.

    Weights come from torch's global RNG: the lock keeps two threads that build models at
    once (concurrent export requests) from interleaving their draws, which would give one
    of them different weights and so a different artifact key; ``fork_rng`` gives the
    caller its RNG state back.
    """
    with _SEED_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHTS_SEED)
        yield


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int, gate: type[nn.Module] = nn.Hardsigmoid,
                 act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.act = act()
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


# (in, kernel, expanded, out, use_se, activation, stride) — torchvision's tables.
_MBV3_SMALL = [
    (16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
    (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1), (48, 5, 288, 96, True, "HS", 2),
    (96, 5, 576, 96, True, "HS", 1), (96, 5, 576, 96, True, "HS", 1),
]
_MBV3_LARGE = [
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2), (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2), (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1), (160, 5, 960, 160, True, "HS", 1),
]


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, k: int, exp: int, cout: int, se: bool, act_name: str, stride: int):
        super().__init__()
        act = nn.Hardswish if act_name == "HS" else nn.ReLU
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(_conv_bn_act(cin, exp, 1, act=act))
        layers.append(_conv_bn_act(exp, exp, k, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcitation(exp, _make_divisible(exp // 4)))
        layers.append(_conv_bn_act(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetV3(nn.Module):
    def __init__(self, setting: list[tuple], last_channel: int, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(3, setting[0][0], 3, 2, act=nn.Hardswish)]
        layers += [InvertedResidual(*row) for row in setting]
        last_in = setting[-1][3]
        layers.append(_conv_bn_act(last_in, 6 * last_in, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * last_in, last_channel), nn.Hardswish(), nn.Dropout(0.2),
            nn.Linear(last_channel, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class TinyCNN(nn.Module):
    """The seed's "Custom Lightweight" (~0.8 M parameters): four strided 3x3 convolutions and a
    1x1 widening before the classifier, which holds 40 % of the weights as in the seed's figure."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        chans = [3, 32, 64, 128, 256]
        self.features = nn.Sequential(
            *[_conv_bn_act(a, b, 3, 2) for a, b in zip(chans, chans[1:], strict=False)],
            _conv_bn_act(chans[-1], 320, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(320, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    """ResNet-18's block: two 3x3 convolutions, a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn_act(cin, cout, 3, stride), _conv_bn_act(cout, cout, 3, act=None)
        )
        self.shortcut = (
            _conv_bn_act(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class MBConv(nn.Module):
    """EfficientNet's block. Its squeeze width derives from the block *input* channels
    (not the expanded ones, unlike MobileNetV3); stochastic depth is identity at inference."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        exp = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(_conv_bn_act(cin, exp, 1, act=nn.SiLU))
        layers += [
            _conv_bn_act(exp, exp, k, stride, groups=exp, act=nn.SiLU),
            SqueezeExcitation(exp, max(1, cin // 4), gate=nn.Sigmoid, act=nn.SiLU),
            _conv_bn_act(exp, cout, 1, act=None),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


# (expand, kernel, stride, in, out, repeats) — the B0 table of Tan & Le (2019).
_EFFICIENTNET_B0 = [
    (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
]


class EfficientNetB0(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(3, 32, 3, 2, act=nn.SiLU)]
        for expand, k, stride, cin, cout, repeats in _EFFICIENTNET_B0:
            layers += [MBConv(cin if i == 0 else cout, cout, k, stride if i == 0 else 1, expand)
                       for i in range(repeats)]
        layers.append(_conv_bn_act(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[[], nn.Module]
    display: str
    reference_params_m: float | None  # published parameter count, millions


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("mobilenet_v3_small", lambda: MobileNetV3(_MBV3_SMALL, 1024), "MobileNetV3-Small", 2.5),
        ZooEntry("mobilenet_v3_large", lambda: MobileNetV3(_MBV3_LARGE, 1280), "MobileNetV3-Large", 5.5),
        ZooEntry("resnet18", ResNet18, "ResNet-18", 11.7),
        ZooEntry("efficientnet_b0", EfficientNetB0, "EfficientNet-B0", 5.3),
        ZooEntry("tiny_cnn", TinyCNN, "Custom Lightweight", 0.8),
    ]
}


def build(name: str) -> nn.Module:
    """Instantiate a zoo model in eval mode with deterministic random weights."""
    if name not in ZOO:
        raise KeyError(f"unknown zoo model {name!r} (known: {', '.join(ZOO)})")
    with seeded_init():
        return ZOO[name].factory().eval()


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
