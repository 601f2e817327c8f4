"""A "PR" version of the zoo's tiny CNN for the A/B tests: the same cell name, more work.

Stride 1 in the first two convolutions makes every later layer see 16x the pixels, so
the program is several times slower than ``zoo:tiny_cnn`` on any CPU: a regression
that no amount of machine noise hides."""

from __future__ import annotations

from torch import nn

from orchestrator.export.zoo import TinyCNN, _conv_bn_act


def slower_tiny_cnn() -> nn.Module:
    model = TinyCNN()
    chans = [3, 32, 64, 128, 256]
    strides = [1, 1, 2, 2]
    convs = [_conv_bn_act(a, b, 3, s) for a, b, s in zip(chans[:-1], chans[1:], strides, strict=True)]
    model.features = nn.Sequential(*convs, _conv_bn_act(chans[-1], 320, 1))
    return model
