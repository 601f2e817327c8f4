"""The delegated-op ratio counts operators, and only those on the data path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from orchestrator.export import analysis, lowering
from orchestrator.export.registry import registry
from orchestrator.export.zoo import SqueezeExcitation, _conv_bn_act


class PartlyDelegable(nn.Module):
    """Conv + squeeze-excitation (XNNPACK takes them) then a cumulative sum (it does not)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_act(3, 8, 3, 2), SqueezeExcitation(8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.body(x).flatten(1), 1)


@pytest.fixture(scope="module")
def lowered():
    from executorch.exir import to_edge_transform_and_lower

    model = PartlyDelegable().eval()
    ep = torch.export.export(model, (torch.rand(1, 3, 16, 16),), strict=False)
    parts = lowering.partitioners_for(registry().resolve("xnnpack"), {})
    return to_edge_transform_and_lower(ep, partitioner=parts).exported_program()


def test_ops_outside_delegates_lower_the_ratio(lowered) -> None:
    d = analysis.delegation_breakdown(lowered.graph_module, lowered.graph_signature.user_inputs)
    assert d["delegated_ops"] >= 5 and d["delegate_subgraphs"] >= 1
    assert any("cumsum" in op for op in d["non_delegated_by_op"]), d
    total = d["delegated_ops"] + d["non_delegated_ops"]
    assert d["delegated_ratio"] == round(d["delegated_ops"] / total, 4)
    assert 0.5 < d["delegated_ratio"] < 1.0


def test_constant_only_ops_are_not_counted_as_work(lowered) -> None:
    with_sig = analysis.delegation_breakdown(lowered.graph_module, lowered.graph_signature.user_inputs)
    without = analysis.delegation_breakdown(lowered.graph_module)
    # Hardsigmoid's scalar constants are converted outside the delegate
    assert with_sig["constant_ops_outside"] >= 1
    assert without["non_delegated_ops"] == with_sig["non_delegated_ops"] + with_sig["constant_ops_outside"]
