"""Zoo architectures match their reference parameter counts; weights are deterministic."""

from __future__ import annotations

import pytest
import torch

from orchestrator.export import zoo
from orchestrator.export.analysis import model_cost

# The seed guide's architecture table (abacuskit-performance-guide.md, "Strategy 3").
SEED_PARAMS_M = {"resnet18": 11.7, "mobilenet_v3_small": 2.5, "efficientnet_b0": 5.3, "tiny_cnn": 0.8}


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_param_count_matches_reference_within_2_percent(name: str) -> None:
    ref = SEED_PARAMS_M.get(name, zoo.ZOO[name].reference_params_m)
    assert ref is not None
    got = zoo.param_count(zoo.build(name)) / 1e6
    assert abs(got - ref) / ref <= 0.02, f"{name}: {got:.3f} M vs reference {ref} M"


def test_weights_are_deterministic() -> None:
    a, b = zoo.build("tiny_cnn").state_dict(), zoo.build("tiny_cnn").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resnet18_cost_matches_published_macs() -> None:
    # ResNet-18 at 224x224 is 1.82 GMACs (torchvision's published figure).
    cost = model_cost(zoo.build("resnet18"), torch.zeros(1, 3, 224, 224))
    assert 1.78e9 < cost["macs"] < 1.86e9
    assert cost["flops"] == 2 * cost["macs"]


def test_cost_scales_with_input() -> None:
    model = zoo.build("tiny_cnn")
    small = model_cost(model, torch.zeros(1, 3, 64, 64))["macs"]
    assert model_cost(model, torch.zeros(2, 3, 64, 64))["macs"] == pytest.approx(2 * small, rel=0.01)
    assert model_cost(model, torch.zeros(1, 3, 128, 128))["macs"] > 3.5 * small


def test_concurrent_builds_get_identical_weights() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        dicts = list(pool.map(lambda _: zoo.build("tiny_cnn").state_dict(), range(4)))
    assert all(torch.equal(d[k], dicts[0][k]) for d in dicts[1:] for k in d)
    state = torch.random.get_rng_state()
    zoo.build("tiny_cnn")
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone


def test_the_torch_free_index_names_every_zoo_model() -> None:
    from orchestrator.export import zoo_index

    assert tuple(zoo.ZOO) == zoo_index.NAMES and zoo.WEIGHTS_SEED == zoo_index.WEIGHTS_SEED
