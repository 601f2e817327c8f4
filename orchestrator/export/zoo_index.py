"""The zoo's names and weight seed as data, for code that must not import torch (spec
validation, the coordinator). ``zoo.py`` builds the models; a test keeps the two in step."""

from __future__ import annotations

WEIGHTS_SEED = 20240601
NAMES = ("mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "efficientnet_b0", "tiny_cnn")
