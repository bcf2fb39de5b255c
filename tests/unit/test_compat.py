"""Each private attribute the kit reaches (multimodal_kit/compat.py) still exists and means what it assumes, on
the installed versions: an upgrade that moves one fails here, not in a user's run."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from multimodal_kit import compat


def test_wandb_started_is_false_until_the_run_is_created(tmp_path) -> None:
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert not compat.wandb_started(logger)
    logger.experiment  # noqa: B018  (creates the run)
    assert compat.wandb_started(logger)
    logger.experiment.finish()


def test_request_graceful_stop_sets_lightnings_sigterm_flag() -> None:
    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert not trainer.received_sigterm
    compat.request_graceful_stop(trainer)
    assert trainer.received_sigterm


def test_logs_this_step_follows_log_every_n_steps() -> None:
    from lightning.pytorch.demos.boring_classes import BoringModel

    seen: list[bool] = []

    class Recording(BoringModel):
        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
            seen.append(compat.logs_this_step(self.trainer))
            return super().training_step(batch, batch_idx)

    trainer = Trainer(accelerator="cpu", logger=False, log_every_n_steps=2, max_steps=6, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(Recording())
    assert seen == [False, True, False, True, False, True]


def test_ddp_finds_unused_parameters_reads_the_strategys_option() -> None:
    assert compat.ddp_finds_unused_parameters(DDPStrategy(find_unused_parameters=True))
    assert not compat.ddp_finds_unused_parameters(DDPStrategy())
    assert compat.ddp_finds_unused_parameters("auto")


def test_feature_lengths_of_a_speech_model_match_its_conv_arithmetic() -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2))
    model = Wav2Vec2Model(config).eval()
    lengths = torch.tensor([400, 1000])
    with torch.no_grad():
        frames = model(torch.zeros(1, 1000)).last_hidden_state.shape[1]
    assert compat.feature_lengths(model, lengths).tolist()[1] == frames


def test_index_sampler_is_the_batch_sampler() -> None:
    batches = BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)
    assert list(compat.index_sampler(DataLoader(range(5), batch_sampler=batches))) == [[0, 1], [2, 3], [4]]


def test_lightningcli_still_reparses_the_checkpoint_where_the_kit_turns_it_off() -> None:
    assert callable(getattr(LightningCLI, "_parse_ckpt_path", None))


@pytest.mark.parametrize(("interval", "fewest", "most"), [(0.0, 32, None), (3600.0, 1, 3)])
def test_the_progress_bar_reads_metrics_every_batch_only_when_asked(tmp_path, interval: float, fewest: int,
                                                                     most: int | None) -> None:
    """KitProgressBar overrides RichProgressBar._update_metrics, which Lightning's bar calls after every batch: with
    no interval it is read 32 times in 32 batches; with a long one only at the epoch's end."""
    from lightning.pytorch.demos.boring_classes import BoringModel

    from multimodal_kit.progress import KitProgressBar

    bar = KitProgressBar(metrics_interval=interval)
    Trainer(max_steps=32, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_model_summary=False,
            callbacks=[bar], default_root_dir=str(tmp_path)).fit(BoringModel())
    assert bar.metric_reads >= fewest and (most is None or bar.metric_reads <= most)
