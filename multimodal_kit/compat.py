"""The only place the kit touches other libraries' private attributes, each where no public route exists.

Every function names what it reaches and why (two subclasses elsewhere override a private hook, each tested with
the others: ``learning_curves`` Lightning's CSV writer's ``_check_log_dir_exists``, ``progress`` the rich progress
bar's ``_update_metrics``); ``tests/unit/test_compat.py`` checks each against the installed
versions, and ``pyproject.toml`` bounds ``lightning`` and ``transformers`` to the versions tested, so an upgrade
that moves one of these fails a test rather than a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

if TYPE_CHECKING:  # Lightning is imported only where it is used: the plain models import this module too
    from lightning.pytorch import Trainer
    from lightning.pytorch.loggers import WandbLogger


def wandb_started(logger: WandbLogger) -> bool:
    """Whether ``logger`` has created its W&B run (``logger.experiment`` would create one just to be asked)."""
    return logger._experiment is not None


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


def index_sampler(loader: DataLoader) -> Any:
    """What a ``DataLoader`` iterates to get each batch's indices (its batch sampler, or the sampler when it
    batches itself): the hook a resumable loader wraps to skip the batches it handed out before a stop."""
    return DataLoader._index_sampler.fget(loader)  # type: ignore[attr-defined]


class KeepsCheckpointConfig:
    """A ``LightningCLI`` mixin that turns off its re-parsing of ``--ckpt_path``'s model hyperparameters after
    the command line (which would let the checkpoint override the user's own flags); the kit's CLI puts the
    checkpoint's whole config *before* the user's flags instead."""

    def _parse_ckpt_path(self) -> None:
        """Replaced: see the class docstring."""
