"""``ManualOptimization``: what a method that steps its optimizers itself needs (Lightning's
``automatic_optimization = False``; the conditional GAN's two networks): one optimizer step with Lightning's
``manual_backward`` and ``clip_gradients``, the refusal of Trainer options that manual optimization cannot honour,
its DDP setting, and a watch for non-finite losses that costs no host sync per step."""

from __future__ import annotations

from typing import Any

import torch

from multimodal_kit.compat import attached_trainer, ddp_finds_unused_parameters
from multimodal_kit.errors import ConfigError


class ManualOptimization:
    """A mixin for a ``LightningModule`` with ``automatic_optimization = False`` and ``hparams.clip_grad_norm``.

    :meth:`optimizer_step` steps one optimizer on one loss, noting (on the device) the first step where that loss
    was not finite; :meth:`check_finite` raises once one was, on logging steps, at each training epoch's end and
    before each checkpoint. :attr:`fix_hint` says in that message what to change.
    """

    #: what the non-finite-loss error suggests
    fix_hint: str = "lower the learning rates or set --model.clip_grad_norm"

    @property
    def first_nonfinite(self) -> dict[str, torch.Tensor]:
        """Per loss name, the first step it was not finite (-1: none), on the device."""
        return vars(self).setdefault("_first_nonfinite", {})

    def configure_callbacks(self) -> list:
        """No callbacks of its own (experiment files list the media callbacks); refuses Trainer options that
        manual optimization cannot honour (checked here because Lightning asks for model callbacks before it
        validates the loop configuration, so this message comes first)."""
        trainer, name = attached_trainer(self), type(self).__name__
        if trainer is not None and trainer.gradient_clip_val:
            raise ConfigError(f"{name} steps its optimizers itself, so the Trainer cannot clip its gradients: "
                              "remove --trainer.gradient_clip_val and set --model.clip_grad_norm.")
        if trainer is not None and trainer.accumulate_grad_batches != 1:
            raise ConfigError(f"{name} steps its optimizers itself, so the Trainer cannot accumulate gradients: "
                              "remove --trainer.accumulate_grad_batches (raise --data.batch_size instead).")
        return []

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and not ddp_finds_unused_parameters(self.trainer.strategy):
            # each backward pass leaves the other networks' parameters without gradients; DDP must be told to look
            # for them or it fails with "Expected to have finished reduction in the prior iteration"
            raise ConfigError(f"{type(self).__name__} steps its networks in turn, so DDP must look for unused "
                              "parameters: use --trainer.strategy ddp_find_unused_parameters_true (or "
                              "ddp_spawn_find_unused_parameters_true; -c experiments/presets/ddp_gan.yaml).")

    def optimizer_step_on(self, optimizer: Any, loss: torch.Tensor, name: str) -> None:
        """Zero the gradients, ``manual_backward(loss)``, clip to ``clip_grad_norm`` and step ``optimizer``;
        ``name`` (e.g. ``train/d_loss``) is what a non-finite ``loss`` is reported as."""
        self.watch_finite(loss, name)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.hparams.clip_grad_norm:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.clip_grad_norm,
                                gradient_clip_algorithm="norm")
        optimizer.step()

    def watch_finite(self, loss: torch.Tensor, name: str) -> None:
        """Note, on the device, the first step whose ``name`` loss is not finite: no host sync per step (a
        ``.item()`` here would stall a GPU's queue twice a step, and under DDP add two all-reduces)."""
        first = self.first_nonfinite.get(name, torch.full((), -1, dtype=torch.long, device=loss.device))
        bad = ~torch.isfinite(loss.detach()) & (first < 0)
        self.first_nonfinite[name] = torch.where(bad, torch.full_like(first, self.global_step), first)

    def check_finite(self) -> None:
        """Stop training if a loss was not finite since the start, naming the first such step, across every
        process."""
        for name, first in self.first_nonfinite.items():
            step = int(self.all_gather(first).max())
            if step >= 0:
                raise FloatingPointError(f"{type(self).__name__}: {name} is not finite at step {step} (epoch "
                                         f"{self.current_epoch}); training stopped: {self.fix_hint}.")

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.check_finite()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        self.check_finite()  # no checkpoint of weights a non-finite loss has already stepped
