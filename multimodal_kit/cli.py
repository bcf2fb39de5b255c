"""``mmkit``: the kit's command line, a ``LightningCLI`` in subclass mode.

``mmkit {fit,validate,test,predict} -c experiments/<method>_<pair>.yaml [--section.key value …]``. Methods and
data modules are named by short class name (``--model Seq2Seq``) or import path. A run lives in one directory
(``--run_dir``, default ``runs/<method>-<data>-<time>``): config, checkpoints, tokenizer, W&B files, media.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

import multimodal_kit.data.image_caption  # noqa: F401  (registers the data modules' short names)
import multimodal_kit.data.text_audio  # noqa: F401
import multimodal_kit.methods  # noqa: F401  (registers the methods' short names)
from multimodal_kit import cli_errors
from multimodal_kit.checkpoints import checkpoint_config, load_checkpoint
from multimodal_kit.cli_checkpoints import (
    RUN_DIR_ENV,
    check_checkpoint_classes,
    checkpoint_in,
    evaluation_checkpoint,
    resume_path,
    run_directory,
)
from multimodal_kit.cli_errors import KitArgumentParser, check_counts, lost_process, user_mistake
from multimodal_kit.compat import (
    KeepsCheckpointConfig,
    cli_section,
    drop_unset_wandb_anonymous,
    wandb_started,
)
from multimodal_kit.data.base import PairDataModule
from multimodal_kit.interruption import LAST, CheckedCheckpoint, ResumableInterrupt
from multimodal_kit.learning_curves import RunMetricsLogger
from multimodal_kit.links import DATA_LINKS, DataAttribute, link_language_model_tokenizer
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.prediction_writer import PredictionWriter
from multimodal_kit.progress import KitProgressBar
from multimodal_kit.run_dirs import class_name, experiment_name, flag_value
from multimodal_kit.run_logging import (
    WANDB_ID_FILE,
    RunConfig,
    wandb_grouping,
    wandb_offline_without_credentials,
    wandb_online,
    wandb_run_id,
)
from multimodal_kit.utils import rank_zero_info

EVAL_SUBCOMMANDS = ("validate", "test", "predict")




class MultimodalCLI(KeepsCheckpointConfig, LightningCLI):
    """The kit's ``LightningCLI``: data→model links, run directory, W&B defaults, checkpoint-only evaluation."""

    def __init__(self, args: ArgsType = None, run: bool = True) -> None:
        super().__init__(
            model_class=MultimodalMethod,
            datamodule_class=PairDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=RunConfig,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={
                # online, checkpoints become W&B artifacts (at the end of the fit); offline they stay in the run
                "logger": {"class_path": "lightning.pytorch.loggers.WandbLogger",
                           "init_args": {"project": "multimodal_kit", "log_model": wandb_online()}},
            },
            args=args,
            run=run,
            parser_class=KitArgumentParser,
        )

    # ------------------------------------------------------------------ parser
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--run_dir", type=str | None, default=None,
                            help="The run's directory (config, checkpoints, tokenizer, W&B files, media). Default: "
                                 "runs/<method>-<data>-<time> for fit, the checkpoint's run for the others.")
        parser.add_argument("--results_path", type=str | None, default=None,
                            help="validate/test: also write the metrics to this file as one flat JSON object.")
        parser.add_argument("--output_dir", type=str | None, default=None,
                            help="predict: where predictions.jsonl and media go. Default: <run_dir>/predictions.")
        parser.add_argument("--attention_maps", type=bool, default=False,
                            help="predict, attention methods: also draw each word's attention over its input, "
                                 "as <output_dir>/attention/<id>.png.")
        for target, attribute in DATA_LINKS.items():
            parser.link_arguments("data", f"model.init_args.{target}", apply_on="instantiate",
                                  compute_fn=DataAttribute(attribute))

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        from_command_line = args is None
        given = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else args
        cli_errors.GIVEN_ARGS[:] = given if isinstance(given, list) else []
        if isinstance(given, list) and given and given[0] in EVAL_SUBCOMMANDS:
            ckpt = flag_value(given, "--ckpt_path")
            if ckpt in ("last", "best"):  # found first, so its own config goes in front as for a file
                run = flag_value(given, "--run_dir")
                found = str(checkpoint_in(Path(run), ckpt) if run else
                            evaluation_checkpoint(parser.parse_args(given)[given[0]], ckpt))
                given = [found if a == ckpt and i and given[i - 1] == "--ckpt_path" else
                         f"--ckpt_path={found}" if a == f"--ckpt_path={ckpt}" else a for i, a in enumerate(given)]
                ckpt, args = found, given
            if ckpt and Path(ckpt).is_file():
                # the checkpoint's own config goes first, so every flag and config file the user gives wins;
                # evaluation is seeded like the shipped files (0) unless the user gives a seed
                config = {"seed_everything": 0, **checkpoint_config(ckpt)}
                expanded = [given[0], "--config", json.dumps(config), *given[1:]]
                if from_command_line:  # the command line itself, expanded: no mix of args and sys.argv to warn about
                    self.config = parser.parse_args(expanded)
                    return
                args = expanded
        super().parse_arguments(parser, args)

    # ------------------------------------------------------------------ run directory, logger, callbacks
    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        if self.subcommand in EVAL_SUBCOMMANDS and config.get("ckpt_path") in ("last", "best"):
            config.ckpt_path = str(evaluation_checkpoint(config, config.ckpt_path))
        if config.get("ckpt_path") and Path(config.ckpt_path).is_file():
            load_checkpoint(config.ckpt_path, mmap=True)  # a damaged file: an error naming it, not a traceback
            check_checkpoint_classes(config)
        check_counts(config)
        if self.subcommand == "predict" and config.trainer.get("logger") is not False:
            config.trainer.logger = False  # predictions go to files; a W&B run per predict would only pile up
        self.run_dir = run_directory(config, self.subcommand).absolute()
        os.environ.setdefault(RUN_DIR_ENV, str(self.run_dir))
        config.run_dir = str(self.run_dir)
        if self.subcommand == "fit":
            config.ckpt_path = resume_path(self.run_dir, config.get("ckpt_path"))
        link_language_model_tokenizer(config)
        if "weights_only" in config and config.weights_only is None:
            config.weights_only = True  # Lightning would unpickle anything from a --ckpt_path URL
        trainer = config.trainer
        if trainer.get("default_root_dir") is None:
            trainer.default_root_dir = str(self.run_dir)
        loggers = trainer.logger if isinstance(trainer.logger, list) else [trainer.logger]
        for logger in loggers:
            if not hasattr(logger, "class_path"):
                continue
            init_args = logger.init_args
            if "save_dir" in init_args and init_args.save_dir in (None, ".", "lightning_logs"):
                init_args.save_dir = str(self.run_dir)
            if str(logger.class_path).endswith("WandbLogger"):
                wandb_offline_without_credentials(init_args, self.run_dir)
                wandb_run_id(init_args, self.run_dir, self.subcommand, resuming=bool(config.get("ckpt_path")))
                wandb_grouping(init_args, config, class_name(config.model), class_name(config.data),
                               experiment_name(config))

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = cli_section(self, self.config_init, "trainer")
        callbacks = list(config.get("callbacks") or [])
        checkpoints = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
        if not checkpoints and config.get("enable_checkpointing") is not False:
            monitor, mode = getattr(self.model, "checkpoint_monitor", ("val/loss", "min"))
            # without a metric (monitor None) the kept checkpoint is the latest epoch, and save_last follows it
            checkpoints.append(CheckedCheckpoint(monitor=monitor, mode=mode, filename="epoch{epoch:03d}-step{step}",
                                                 auto_insert_metric_name=False, save_last=monitor is None))
            if monitor is not None:
                # last.ckpt: the latest epoch, always (ModelCheckpoint's save_last only refreshes it when a new best
                # checkpoint is written, so a run whose metric stopped improving would resume from a stale epoch)
                checkpoints.append(CheckedCheckpoint(filename=ModelCheckpoint.CHECKPOINT_NAME_LAST,
                                                     enable_version_counter=False))
            callbacks += checkpoints
        for callback in checkpoints:
            if callback.dirpath is None:
                callback.dirpath = str(self.run_dir / "checkpoints")
        if self.subcommand == "fit" and config.get("enable_checkpointing") is not False:
            callbacks.append(ResumableInterrupt(self.run_dir / "checkpoints"))
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(KitProgressBar())  # Lightning's rich bar without a host–device sync every step
        if self.subcommand == "predict":
            options = self.config.predict
            callbacks.append(PredictionWriter(options.get("output_dir") or self.run_dir / "predictions",
                                              attention_maps=bool(options.get("attention_maps"))))
        config["callbacks"] = callbacks
        trainer = super().instantiate_trainer(**kwargs)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                drop_unset_wandb_anonymous(logger)
        if self.subcommand == "fit" and not trainer.fast_dev_run:  # fast_dev_run logs nothing, as Lightning means
            monitor = checkpoints[0].monitor if checkpoints else None
            trainer.loggers = [*trainer.loggers, RunMetricsLogger(self.run_dir, monitor=monitor)]
        return trainer

    # ------------------------------------------------------------------ around the subcommands
    def _check_contract(self) -> None:
        """The method's fields against the data's, on every process, before any row is checked (the links may have read
        the training split's texts or labels)."""
        if isinstance(self.model, MultimodalMethod):
            self.model.check_data(self.datamodule, self.subcommand)

    def before_validate(self) -> None:
        self._check_contract()

    def before_test(self) -> None:
        self._check_contract()

    def before_predict(self) -> None:
        self._check_contract()

    def before_fit(self) -> None:
        self._check_contract()
        self._keep_tokenizer_and_wandb_id()

    @rank_zero_only
    def _keep_tokenizer_and_wandb_id(self) -> None:
        tokenizer = getattr(self.datamodule, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(self.run_dir / "tokenizer"))
        labels = getattr(self.datamodule, "labels", None)
        if labels:  # each label field's classes, in class-index order
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                (self.run_dir / WANDB_ID_FILE).write_text(f"{logger.version}\n")

    @rank_zero_only
    def after_fit(self) -> None:
        best = self.trainer.checkpoint_callback
        lines = [f"Run directory: {self.run_dir}"]
        if best is not None and best.best_model_path and Path(best.best_model_path).is_file():
            score = f" ({best.monitor}={float(best.best_model_score):.4f})" if best.best_model_score is not None else ""
            lines.append(f"Best checkpoint{score}: {best.best_model_path}")
        last = self.run_dir / "checkpoints" / LAST
        if last.is_file():
            lines.append(f"Last checkpoint: {last}")
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger):
                lines.append(f"W&B run files: {logger.experiment.dir if wandb_started(logger) else self.run_dir}")
        rank_zero_info("\n".join(lines))
        self._finish_wandb()

    def after_validate(self) -> None:
        self._report("val/")
        self._finish_wandb()

    def after_test(self) -> None:
        self._report("test/")
        self._finish_wandb()

    def _finish_wandb(self) -> None:
        """Close the subcommand's W&B run (writes its summary), so one command is one W&B run."""
        for logger in self.trainer.loggers:
            if isinstance(logger, WandbLogger) and wandb_started(logger):
                logger.experiment.finish()

    @rank_zero_only
    def _report(self, prefix: str) -> None:
        metrics = {k: float(v) for k, v in sorted(self.trainer.callback_metrics.items()) if k.startswith(prefix)}
        path = self.config[self.subcommand].get("results_path")
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(metrics, indent=2) + "\n")
            rank_zero_info(f"Metrics written to {path}")


def main(args: ArgsType = None) -> None:
    """Entry point of ``mmkit`` and ``python -m multimodal_kit``; ``args`` makes it callable from tests.

    A mistake in the data or the settings (:class:`DataError`, :class:`ConfigError`), or a DDP process lost
    mid-run, ends the command with its message, one paragraph, and exit status 2; a traceback is for bugs.
    """
    had_run_dir = RUN_DIR_ENV in os.environ
    if os.getcwd() not in sys.path:  # a user's own classes by import path from the working directory, as -m does
        sys.path.insert(0, os.getcwd())
    try:
        MultimodalCLI(args=args)
    except Exception as error:
        mistake = user_mistake(error) or lost_process(error, os.environ.get(RUN_DIR_ENV))
        if mistake is None:
            raise
        command = " ".join(["mmkit", *(sys.argv[1:2] if args is None else list(args)[:1])])
        sys.stderr.write(f"{command}: error: {mistake}\n")
        raise SystemExit(2) from None
    finally:
        if not had_run_dir:
            os.environ.pop(RUN_DIR_ENV, None)


if __name__ == "__main__":
    main()
