"""What a run writes about itself: the resolved config (file and W&B), and the W&B run's mode, id and grouping.

Without credentials W&B logs offline into the run directory and says so once; one W&B run per run directory, also
when a fit resumes; runs grouped by experiment and tagged with the method, the data module and the source.
"""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import string
import warnings
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from multimodal_kit.utils import rank_zero_info

WANDB_ID_FILE = "wandb_run_id"  # in the run directory: the W&B run a resumed fit logs into again


def wandb_has_credentials() -> bool:
    """Whether W&B can log online: an API key in the environment or in ``~/.netrc`` (``wandb login``)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_online() -> bool:
    """Whether W&B will log online: credentials, and ``WANDB_MODE`` neither ``offline`` nor ``disabled``."""
    return wandb_has_credentials() and os.environ.get("WANDB_MODE", "online") not in ("offline", "dryrun", "disabled")


class RunConfig(SaveConfigCallback):
    """Saves the resolved config into the run directory (``config.yaml`` for fit, ``config_<stage>.yaml``
    otherwise, overwriting) and sends it whole to W&B."""

    def setup(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        stage = getattr(stage, "value", stage)  # Lightning passes its TrainerFn enum here, whose str() is its repr
        self.config_filename = "config.yaml" if stage == "fit" else f"config_{stage}.yaml"
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        if stage == "predict":
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        key = "cli" if stage == "fit" else f"cli_{stage}"  # a test added to the fit's run keeps the fit's config
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update({key: config}, allow_val_change=True)


def wandb_offline_without_credentials(init_args: Any, run_dir: Path) -> None:
    """Log offline (and say so once) when W&B has no credentials and nothing else chose a mode."""
    if os.environ.get("WANDB_MODE") or init_args.get("offline") or wandb_has_credentials():
        return
    os.environ["WANDB_MODE"] = "offline"
    rank_zero_info(f"W&B: no credentials found (WANDB_API_KEY or `wandb login`), so logging offline into "
                   f"{run_dir}/wandb; upload later with `wandb sync {run_dir}/wandb/offline-run-*`.")


def wandb_run_id(init_args: Any, run_dir: Path, subcommand: str, resuming: bool) -> None:
    """One W&B run per run directory: a fit gets a run id kept in ``<run_dir>/wandb_run_id``; a fit that
    resumes a checkpoint (``--ckpt_path``), and ``validate``/``test`` of the run's checkpoints, log into the run of
    that id again (its config under ``cli_<subcommand>``, its metrics beside the fit's)."""
    if init_args.get("id") or subcommand == "predict":
        return
    stored = run_dir / WANDB_ID_FILE
    if (resuming or subcommand != "fit") and stored.is_file():
        init_args.id = stored.read_text().strip()  # WandbLogger resumes a run of a known id ("allow")
        rank_zero_info(f"W&B: {'resuming' if subcommand == 'fit' else 'adding to'} run {init_args.id} of {run_dir}")
    elif subcommand == "fit":  # W&B's own run ids: 8 characters of [a-z0-9]
        init_args.id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def wandb_grouping(init_args: Any, config: Any, method: str, data: str, experiment: str) -> None:
    """Group W&B runs by ``experiment`` (``<Method>-<Data>``) and tag them with the method, the data module and
    the source, unless the config sets ``group``/``tags``; a sweep's runs are grouped by W&B itself."""
    if not init_args.get("group") and not os.environ.get("WANDB_SWEEP_ID"):
        init_args.group = experiment
    if not init_args.get("tags"):
        source = str(config.data.init_args.get("source") or "")
        init_args.tags = [method, data] + ([Path(source).name or source] if source else [])


class _NoAdvertising(logging.Filter):
    """Drops Lightning's "💡 Tip" lines (an advertisement for its hosted logger, printed by every Trainer)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdvertising())
# Lightning's own use of a torch API that newer torch deprecates, once per run: nothing a user can act on
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
