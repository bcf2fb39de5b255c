"""The only place the kit touches other libraries' private attributes, each where no public route exists.

Every function and class names what it reaches and why; ``tests/unit/test_compat.py`` checks each against the
installed versions, and ``pyproject.toml`` bounds ``lightning`` and ``transformers`` to the versions tested, so an
upgrade that moves one of these fails a test rather than a run. ``tests/unit/test_layout.py`` fails where a file
outside this one reaches a private attribute of another package. (The plain models import
:func:`feature_lengths` where they call it, so importing a network never imports Lightning.)
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.loggers import WandbLogger


def wandb_started(logger: WandbLogger) -> bool:
    """Whether ``logger`` has created its W&B run (``logger.experiment`` would create one just to be asked)."""
    return logger._experiment is not None


def drop_unset_wandb_anonymous(logger: WandbLogger) -> None:
    """Lightning's ``WandbLogger`` hands ``wandb.init`` ``anonymous=None`` when the user set nothing, and wandb
    warns about any value of that retired setting ("The anonymous setting has no effect"): leave it out unless set."""
    if "anonymous" in logger._wandb_init and logger._wandb_init["anonymous"] is None:
        del logger._wandb_init["anonymous"]


def request_graceful_stop(trainer: Trainer) -> None:
    """Stop the fit at the next step boundary, as Lightning does on SIGTERM (its signal connector's flag; the
    training loop then raises ``SIGTERMException``): used to give a first Ctrl-C the same clean path."""
    trainer._signal_connector.received_sigterm = True


def logs_this_step(trainer: Trainer) -> bool:
    """Whether Lightning writes the logged values of the current training step to the loggers
    (``log_every_n_steps``, counted as Lightning counts them, in batches that stepped)."""
    return bool(trainer._logger_connector.should_update_logs)


def ddp_finds_unused_parameters(strategy: Any) -> bool:
    """Whether a DDP strategy was created with ``find_unused_parameters=True`` (it keeps its DDP options only in
    a private dict); ``True`` for any other strategy, which has nothing to find."""
    from lightning.pytorch.strategies import DDPStrategy

    return not isinstance(strategy, DDPStrategy) or bool(strategy._ddp_kwargs.get("find_unused_parameters"))


def feature_lengths(backbone: Any, lengths: torch.Tensor) -> torch.Tensor:
    """Output frames of a ``transformers`` speech model (wav2vec 2.0, HuBERT, WavLM) for ``lengths`` input
    samples: its own conv arithmetic, which it exposes only as a private method."""
    return backbone._get_feat_extract_output_lengths(lengths)


def attached_trainer(module: LightningModule) -> Trainer | None:
    """The Trainer ``module`` is attached to, or ``None`` (``module.trainer`` raises when there is none)."""
    return module._trainer


def cli_section(cli: LightningCLI, config: Any, key: str) -> Any:
    """Section ``key`` of a ``LightningCLI`` config, under the running subcommand's name where there is one (the
    lookup ``LightningCLI`` does for its own ``instantiate_trainer``)."""
    return cli._get(config, key)


def model_revision(config: Any) -> str | None:
    """The commit a ``transformers`` model's config was loaded from (``None``: built locally, or not a hub
    model); transformers keeps it only as a private attribute."""
    return getattr(config, "_commit_hash", None)


def dataset_fingerprint(dataset: Any) -> str:
    """A ``datasets.Dataset``'s fingerprint: a hash of its content and every transform applied to it (``datasets``
    keeps it only as the private ``_fingerprint``; the key of the kit's feature and media-check caches)."""
    return str(getattr(dataset, "_fingerprint", ""))


class IndexHookLoader(DataLoader):
    """A ``DataLoader`` whose batch indices pass through :meth:`index_batches` (what it iterates to get each
    batch's indices is the private ``_index_sampler``: its batch sampler, or the sampler when it batches itself):
    the hook a resumable loader uses to skip the batches it handed out before a stop."""

    @property
    def _index_sampler(self) -> Any:
        return self.index_batches(DataLoader._index_sampler.fget(self))  # type: ignore[attr-defined]

    def index_batches(self, batches: Any) -> Any:
        """The iterable of batch indices this loader uses; ``batches`` is the stock one."""
        return batches


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing an existing ``metrics.csv`` (the stock writer deletes it in
    ``_check_log_dir_exists``): its header is kept, and the first rows written drop the old rows at or after
    their first step (those a stopped fit logged past its checkpoint)."""

    def _check_log_dir_exists(self) -> None:
        self._resumed = self._fs.isfile(self.metrics_file_path)
        if self._resumed:
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])

    def save(self) -> None:
        if self._resumed and self.metrics:
            first = min(int(row["step"]) for row in self.metrics)
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                kept = [row for row in csv.DictReader(file) if int(float(row["step"])) < first]
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(kept)
            self._resumed = False
        super().save()


class ContinuingCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` whose writer continues an existing ``metrics.csv`` instead of deleting it (a
    resumed fit), through the logger's private ``_experiment`` slot."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment

    @property
    def started(self) -> bool:
        """Whether the writer exists (asking for :attr:`experiment` would create it)."""
        return self._experiment is not None


class KeepsCheckpointConfig:
    """A ``LightningCLI`` mixin that turns off its re-parsing of ``--ckpt_path``'s model hyperparameters after
    the command line (which would let the checkpoint override the user's own flags); the kit's CLI puts the
    checkpoint's whole config *before* the user's flags instead."""

    def _parse_ckpt_path(self) -> None:
        """Replaced: see the class docstring."""
