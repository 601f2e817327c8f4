"""The PR program of the operator-profile end-to-end test: the zoo's tiny CNN with one added
expensive block after the first layer — an expansion at 32x32 (3x3 convolution 32→96 with
BatchNorm and Hardswish, then a 1x1 projection back to 32: ~31 M MACs on top of the model's
~17 M), so the PR is clearly slower, whatever the load on the host, and the slowdown
belongs to that block's operators."""

from __future__ import annotations

from torch import nn

from orchestrator.export.zoo import TinyCNN, _conv_bn_act


def tiny_cnn_plus_block() -> nn.Module:
    model = TinyCNN()
    first, *rest = model.features
    block = nn.Sequential(_conv_bn_act(32, 96, 3, 1, act=nn.Hardswish), _conv_bn_act(96, 32, 1, act=None))
    model.features = nn.Sequential(first, block, *rest)
    return model
