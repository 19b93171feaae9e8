"""The digits search of ``digits_mlp.py``, with the network written in PyTorch.

Same space, same data, same per-epoch validation accuracy; the model is a
``torch.nn`` MLP trained with AdamW. Runs when PyTorch is installed
(``pip install torch``):

    aionas run examples/digits_mlp_torch.py --max-models 24
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import aionas

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_mlp import data, space  # the same space and splits

__all__ = ["evaluate", "space"]

EPOCHS = 30


def evaluate(params: dict[str, Any]) -> float:
    """Train one network and return its best validation accuracy."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(1)
    x_train, x_valid, y_train, y_valid = (
        torch.as_tensor(array, dtype=torch.float32 if array.ndim == 2 else torch.long)
        for array in data()
    )
    activation = {"relu": nn.ReLU, "tanh": nn.Tanh}[params["activation"]]
    layers: list[nn.Module] = []
    width_in = x_train.shape[1]
    for _ in range(params["depth"]):
        layers += [nn.Linear(width_in, params["width"]), activation()]
        width_in = params["width"]
    network = nn.Sequential(*layers, nn.Linear(width_in, 10))
    optimizer = torch.optim.AdamW(
        network.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
    )
    loss = nn.CrossEntropyLoss()
    best = 0.0
    for _ in range(EPOCHS):
        network.train()
        for batch in torch.randperm(len(x_train)).split(64):
            optimizer.zero_grad()
            loss(network(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            accuracy = (network(x_valid).argmax(1) == y_valid).float().mean().item()
        aionas.report_intermediate_result(accuracy)  # raises if the model is cancelled
        best = max(best, accuracy)
    return best
