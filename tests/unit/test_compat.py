"""Each private attribute the kit reaches (multimodal_kit/compat.py) still exists and means what it assumes, on
the installed versions: an upgrade that moves one fails here, not in a user's run."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import BatchSampler, SequentialSampler

from multimodal_kit import compat


def test_wandb_started_is_false_until_the_run_is_created(tmp_path) -> None:
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert not compat.wandb_started(logger)
    logger.experiment  # noqa: B018  (creates the run)
    assert compat.wandb_started(logger)
    logger.experiment.finish()


def test_an_unset_anonymous_setting_is_left_out_of_wandb_init_and_a_set_one_kept(tmp_path) -> None:
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert "anonymous" in logger._wandb_init  # what Lightning hands wandb.init, which warns about any value
    compat.drop_unset_wandb_anonymous(logger)
    assert "anonymous" not in logger._wandb_init
    chosen = WandbLogger(save_dir=str(tmp_path), offline=True, anonymous=True)
    compat.drop_unset_wandb_anonymous(chosen)
    assert chosen._wandb_init["anonymous"] == "allow"


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


def test_the_index_hook_loader_sees_and_replaces_the_batch_indices() -> None:
    seen = []

    class EveryOther(compat.IndexHookLoader):
        def index_batches(self, batches):  # noqa: ANN001, ANN202
            seen.append(list(batches))
            return seen[-1][::2]

    batches = BatchSampler(SequentialSampler(range(5)), 2, drop_last=False)
    assert [b.tolist() for b in EveryOther(range(5), batch_sampler=batches)] == [[0, 1], [4]]
    assert seen == [[[0, 1], [2, 3], [4]]]
    assert [b.tolist() for b in EveryOther(range(3), batch_size=2)] == [[0, 1]]  # the loader's own batching too


def test_attached_trainer_is_none_until_a_trainer_holds_the_module() -> None:
    from lightning.pytorch.demos.boring_classes import BoringModel

    model = BoringModel()
    assert compat.attached_trainer(model) is None
    trainer = Trainer(accelerator="cpu", logger=False, max_steps=1, limit_val_batches=0, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model)
    assert compat.attached_trainer(model) is trainer


def test_cli_section_reads_under_the_subcommand_or_at_the_top() -> None:
    from jsonargparse import Namespace

    cli = object.__new__(LightningCLI)  # only its subcommand is read
    cli.subcommand = "fit"
    assert compat.cli_section(cli, Namespace(fit=Namespace(trainer=Namespace(max_epochs=3))), "trainer").max_epochs == 3
    cli.subcommand = None
    assert compat.cli_section(cli, Namespace(trainer=Namespace(max_epochs=4)), "trainer").max_epochs == 4


def test_model_revision_is_the_configs_commit_hash() -> None:
    from transformers import GPT2Config

    config = GPT2Config(n_layer=1, n_embd=8, n_head=2)
    assert compat.model_revision(config) is None
    config._commit_hash = "abc123"
    assert compat.model_revision(config) == "abc123"


def test_a_datasets_fingerprint_follows_its_content_and_transforms() -> None:
    import datasets

    first, same = datasets.Dataset.from_dict({"x": [1, 2]}), datasets.Dataset.from_dict({"x": [1, 2]})
    other = datasets.Dataset.from_dict({"x": [3, 4]})
    assert compat.dataset_fingerprint(first) == compat.dataset_fingerprint(same) != compat.dataset_fingerprint(other)
    assert compat.dataset_fingerprint(first.select([1])) not in ("", compat.dataset_fingerprint(first))


def test_the_continuing_csv_logger_keeps_the_rows_before_a_resumed_step(tmp_path) -> None:
    first = compat.ContinuingCSVLogger(save_dir=str(tmp_path), name="", version="")
    assert not first.started
    first.log_metrics({"train/loss": 3.0}, step=0)
    first.log_metrics({"train/loss": 2.0}, step=5)
    first.save()
    assert first.started
    resumed = compat.ContinuingCSVLogger(save_dir=str(tmp_path), name="", version="")
    resumed.log_metrics({"train/loss": 1.5}, step=5)  # the stopped fit's step 5 is redone
    resumed.save()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",") == ["step", "train/loss"] and [r.split(",")[0] for r in rows[1:]] == ["0", "5"]
    assert rows[2].endswith("1.5")


def test_lightningcli_still_reparses_the_checkpoint_where_the_kit_turns_it_off() -> None:
    assert callable(getattr(LightningCLI, "_parse_ckpt_path", None))


@pytest.mark.parametrize(("interval", "fewest", "most"), [(0.0, 32, None), (3600.0, 1, 3)])
def test_the_progress_bar_reads_metrics_every_batch_only_when_asked(tmp_path, interval: float, fewest: int,
                                                                     most: int | None) -> None:
    """KitProgressBar overrides the public get_metrics, which Lightning's bar calls after every batch: with no
    interval it is read 32 times in 32 batches; with a long one only at the epoch's end."""
    from lightning.pytorch.demos.boring_classes import BoringModel

    from multimodal_kit.progress import KitProgressBar

    bar = KitProgressBar(metrics_interval=interval)
    Trainer(max_steps=32, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_model_summary=False,
            callbacks=[bar], default_root_dir=str(tmp_path)).fit(BoringModel())
    assert bar.metric_reads >= fewest and (most is None or bar.metric_reads <= most)
