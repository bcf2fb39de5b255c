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


def test_cosine_decay_follows_warmup_down_to_zero_over_the_runs_steps() -> None:
    from multimodal_kit.methods.schedule import lr_factor

    factors = [lr_factor(step, warmup_steps=2, decay="cosine", total_steps=6) for step in range(7)]
    # warmup 1/2, 2/2; then cos over the 4 steps left: 1, (1+cos(pi/4))/2, 1/2, (1+cos(3pi/4))/2, 0
    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.853553, 0.5, 0.146447, 0.0], abs=1e-6)
    assert lr_factor(10, warmup_steps=0, decay="constant", total_steps=6) == 1.0


def test_cosine_decay_needs_a_known_number_of_steps() -> None:
    import lightning.pytorch as pl

    from multimodal_kit.errors import ConfigError

    model = Seq2Seq(vocab_size=10, lr_decay="cosine", embed_dim=8, hidden_dim=8)
    with pytest.raises(ConfigError, match="max_steps"):
        model.configure_optimizers()  # no trainer: the run's length is unknown
    model.trainer = pl.Trainer(max_time="00:00:10:00", max_epochs=-1, logger=False, enable_checkpointing=False)
    with pytest.raises(ConfigError, match="max_steps"):
        model.configure_optimizers()  # a time limit alone
    model.trainer = pl.Trainer(max_steps=8, logger=False, enable_checkpointing=False)
    config = model.configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(2e-3) and rates == sorted(rates, reverse=True) and rates[-1] < 1e-4


def test_a_method_that_writes_no_optimizer_gets_the_bases_adamw_over_its_trainable_parameters() -> None:
    """The default configure_optimizers: AdamW at the method's own lr and weight_decay, frozen parameters left out,
    the kit's warmup when the method has warmup_steps."""
    from torch import nn

    from multimodal_kit.methods.base import MultimodalMethod

    class Probe(MultimodalMethod):
        def __init__(self, lr: float = 0.01, weight_decay: float = 0.5, warmup_steps: int = 2) -> None:
            super().__init__()

        def configure_models(self) -> None:
            self.frozen, self.head = nn.Linear(3, 3).requires_grad_(False), nn.Linear(3, 2)

    config = Probe().configure_optimizers()
    optimizer = config["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert [len(g["params"]) for g in optimizer.param_groups] == [2]  # the head's weight and bias only
    assert optimizer.param_groups[0]["weight_decay"] == 0.5
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005)  # warmup's first step: 1/2 of lr


def test_parameter_groups_give_the_encoder_its_own_rate_and_drop_empty_groups() -> None:
    model = Seq2Seq(vocab_size=10, lr=1e-3, encoder_lr=1e-4, embed_dim=8, hidden_dim=8)
    optimizer = model.configure_optimizers()
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-4]
    model.encoder.requires_grad_(False)
    assert len(model.configure_optimizers().param_groups) == 1
