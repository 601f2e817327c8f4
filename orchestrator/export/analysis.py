"""What an export learns about its program: how much the backend took, and what the model costs.

The delegated-op ratio counts operators, not delegate calls: one XNNPACK delegate call
can hold 150 convolutions while three stray ``aten.add`` nodes fall back to the
portable kernels, and "1 delegate, 3 undelegated" would hide that. The cost (MACs) is
measured on the eager fp32 model for the exact input shape; the virtual device's
performance model scales simulated latency by it.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Collection
from typing import Any

import torch

# Nodes that are plumbing, not work: tuple unpacking after a delegate call, and the
# call itself (its ops are counted inside the lowered module instead).
_PLUMBING = {operator.getitem}


def _op_name(node: torch.fx.Node) -> str:
    return str(getattr(node.target, "__name__", node.target))


def delegation_breakdown(graph_module: torch.fx.GraphModule,
                         user_inputs: Collection[str] | None = None) -> dict[str, Any]:
    """Count operators inside delegates vs left to the portable runtime.

    ``graph_module`` is the edge program's graph after ``to_edge_transform_and_lower``;
    ``user_inputs`` are the names of its user-input placeholders (the graph signature's
    ``user_inputs``). Given them, undelegated ops that depend only on constants (e.g. the
    0-d ``_to_dim_order_copy`` of a Hardsigmoid's scalar constants, two per MobileNetV3
    squeeze-excitation block) are reported as ``constant_ops_outside`` instead of diluting
    the ratio: they are not the model's work.
    """
    delegated = 0
    subgraphs = 0
    outside: Counter[str] = Counter()
    constant_only = 0
    on_data_path: set[str] = set(user_inputs or ())
    for node in graph_module.graph.nodes:
        if user_inputs is None or any(a.name in on_data_path for a in node.all_input_nodes):
            on_data_path.add(node.name)
        if node.op == "get_attr" and node.name.startswith("lowered_module"):
            lowered = getattr(graph_module, str(node.target))
            subgraphs += 1
            delegated += sum(1 for n in lowered.original_module.graph.nodes
                             if n.op == "call_function" and n.target not in _PLUMBING)
        elif node.op == "call_function" and node.target not in _PLUMBING \
                and "executorch_call_delegate" not in _op_name(node):
            if node.name in on_data_path:
                outside[_op_name(node)] += 1
            else:
                constant_only += 1
    total = delegated + sum(outside.values())
    return {
        "delegated_ops": delegated,
        "non_delegated_ops": sum(outside.values()),
        "delegated_ratio": round(delegated / total, 4) if total else 0.0,
        "delegate_subgraphs": subgraphs,
        "non_delegated_by_op": dict(outside.most_common(20)),
        "constant_ops_outside": constant_only,
    }


def model_cost(model: torch.nn.Module, example: torch.Tensor) -> dict[str, int]:
    """FLOPs of one forward pass as counted by torch (matmul/conv family, 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example)
    flops = int(counter.get_total_flops())
    return {"flops": flops, "macs": flops // 2}

