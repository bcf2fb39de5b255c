import pytest
import torch

from multimodal_kit.methods import Seq2Seq


def test_default_optimizer_is_adamw_without_schedule() -> None:
    optimizer = Seq2Seq(vocab_size=10, lr=1e-3, embed_dim=8, hidden_dim=8).configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["lr"] == 1e-3


def test_warmup_raises_the_learning_rate_linearly() -> None:
    config = Seq2Seq(vocab_size=10, lr=1e-3, warmup_steps=4, embed_dim=8, hidden_dim=8).configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
