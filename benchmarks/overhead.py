"""Benchmark: what the kit costs over hand-written PyTorch, and whether its input pipeline keeps up.

For each experiment (``experiments/<method>_<pair>.yaml``, its model and data exactly as configured):

- **loader**: the DataModule's training loader alone (default settings), samples/s over the batches it gives;
- **kit**: ``Trainer.fit`` of the experiment's model on those same batches, already collated (its precision,
  gradient clipping, logging every ``log_every_n_steps`` steps to an offline W&B run, progress bar);
- **plain**: a hand-written step training a copy of the same model from the same initial weights on the same
  batch: forward, loss, backward, clipping, optimizer step (the GAN: its D step, G step and EMA update).

Kit and plain steps alternate one by one (:class:`Interleaved`), so the machine's drifts in speed — ±10 % within
a minute on a shared 2-core VM — hit both alike. ``kit/plain`` is the median of the per-pair ratios of step
times (1.0 = no overhead). On a CUDA machine each experiment is also run in
``bf16-mixed`` (autocast in the plain loop). Prints a table and writes its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningDataModule, Trainer
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, update_results  # noqa: E402

SECTION = "Framework overhead and input pipeline — `make bench-overhead`"
EXPERIMENTS = ["seq2seq_image_caption", "attention_image_caption", "gan_image_caption",
               "seq2seq_text_audio", "attention_text_audio", "gan_text_audio"]
QUICK_DATA = {"image_caption": {"num_train": 64, "num_validation": 8, "num_test": 8},
              "text_audio": {"num_train": 48, "num_validation": 8, "num_test": 8}}


class Interleaved(Callback):
    """Times the kit's steps and, between them, one hand-written step of a separate copy of the model on the same
    batch: kit and plain steps alternate one by one, so drifts in machine speed (large on shared CPUs) hit both
    alike.

    A kit step is the time from the end of the plain step in one ``on_train_batch_start`` to the start of the next
    (or the end of training): the training step, backward, clipping, optimizer step, logging, progress bar and
    fetching the next batch — everything the kit does per step.
    """

    def __init__(self, plain_step: Callable[[dict[str, Any]], None], device: torch.device, precision: str) -> None:
        self.plain_step = plain_step
        self.device = device
        self.autocast = precision == "bf16-mixed"
        self.kit: list[float] = []
        self.plain: list[float] = []
        self._kit_start: float | None = None

    def _kit_end(self) -> None:
        sync(self.device)
        if self._kit_start is not None:
            self.kit.append(time.perf_counter() - self._kit_start)

    def on_train_batch_start(self, trainer: Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._kit_end()
        start = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16) if self.autocast else nullcontext():
            self.plain_step(to_device(batch, self.device))
        sync(self.device)
        self.plain.append(time.perf_counter() - start)
        self._kit_start = time.perf_counter()

    def on_train_end(self, trainer: Trainer, pl_module: Any) -> None:
        self._kit_end()


def build(experiment: str, extra: list[str]) -> tuple[Any, Any, Any]:
    """The experiment's model, data module and parsed config, as ``mmkit fit -c experiments/<experiment>.yaml``
    builds them."""
    from multimodal_kit.cli import MultimodalCLI

    run_dir = tempfile.mkdtemp(prefix="mmkit-overhead-")
    cli = MultimodalCLI(args=["-c", str(ROOT / "experiments" / f"{experiment}.yaml"), "--run_dir", run_dir,
                              "--trainer.logger", "false", *extra], run=False)
    return cli.model, cli.datamodule, cli.config


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loader_rate(datamodule: Any, batches: int) -> tuple[float, list[dict[str, Any]]]:
    """Samples/s of the training loader alone (a fresh iterator, as at an epoch start) and the batches it gave."""
    loader = datamodule.train_dataloader()
    start, taken = time.perf_counter(), []
    for batch in loader:
        taken.append(batch)
        if len(taken) == batches:
            break
    seconds = time.perf_counter() - start
    return sum(len(b["id"]) for b in taken) / seconds, taken


def backward_and_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: Any, clip: float | None) -> None:
    """What a hand-written loop does with one loss: zero the gradients, backward, clip ``params``, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


def plain_text_step(model: Any, clip: float | None) -> Callable[[dict[str, Any]], None]:
    """One hand-written training step of a text-generation method: teacher-forced loss, backward, clip, AdamW."""
    hp = model.hparams
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)

    def step(batch: dict[str, Any]) -> None:
        backward_and_step(optimizer, model.loss(batch), model.parameters(), clip)

    return step


def plain_gan_step(model: Any, clip: float | None) -> Callable[[dict[str, Any]], None]:
    """One hand-written GAN step: D on real/right, real/wrong and fake/right pairs; G; the EMA update."""
    from multimodal_kit.models.gan import trainable_parameters
    from multimodal_kit.models.gan_losses import discriminator_loss, generator_loss, mismatched_texts

    hp = model.hparams
    opt_g, opt_d = model.configure_optimizers()
    d_params = trainable_parameters([model.discriminator, model.text_encoder])
    g_params = trainable_parameters([model.generator])

    def trainable(params: list[torch.nn.Parameter], flag: bool) -> None:
        for p in params:
            p.requires_grad_(flag)

    def step(batch: dict[str, Any]) -> None:
        real = model.to_model(batch)
        tokens, lengths = batch["text_tokens"], batch["text_lengths"]
        n = len(tokens)
        permutation, mismatch = mismatched_texts(batch["text"])
        permutation, mismatch = permutation.to(real.device), mismatch.to(real.device)
        trainable(g_params, False)
        c = model.text_encoder(tokens, lengths)
        with torch.no_grad():
            fake = model.generator(model.noise(n), c)
        d_loss = discriminator_loss(model.discriminator(real, c), model.discriminator(real, c[permutation]),
                                    model.discriminator(fake, c), hp.loss, mismatch)
        backward_and_step(opt_d, d_loss, d_params, clip)
        trainable(g_params, True)
        trainable(d_params, False)
        c = model.text_encoder(tokens, lengths).detach()
        g_loss = generator_loss(model.discriminator(model.generator(model.noise(n), c), c), hp.loss)
        backward_and_step(opt_g, g_loss, g_params, clip)
        trainable(d_params, True)
        if model.generator_ema is not None:
            model.generator_ema.update_parameters(model.generator)

    return step


class FixedBatches(LightningDataModule):
    """Serves already-collated batches, moved to the device the way the experiment's data module moves them."""

    def __init__(self, batches: list[dict[str, Any]], source: LightningDataModule) -> None:
        super().__init__()
        self.batches, self.source = batches, source

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.batches, batch_size=None, collate_fn=lambda b: b)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return self.source.transfer_batch_to_device(batch, device, dataloader_idx)


def paired_times(model: Any, batches: list[dict[str, Any]], accelerator: str, precision: str, clip: float | None,
                 log_every: int, out: Path, datamodule: LightningDataModule,
                 **trainer_options: Any) -> tuple[list[float], list[float]]:
    """Per-step seconds of ``Trainer.fit`` over ``batches`` (already collated; the kit's usual logging) and of the
    hand-written loop training a copy of the model from the same weights, interleaved step by step."""
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    twin = copy.deepcopy(model).to(device).train()
    plain_step = (plain_gan_step if _is_gan(model) else plain_text_step)(twin, clip)
    clock = Interleaved(plain_step, device, precision)
    logger = WandbLogger(project="multimodal_kit-overhead", save_dir=str(out), offline=True)
    options = dict(accelerator=accelerator, devices=1, precision=precision, max_epochs=1,  # one pass over the batches
                   gradient_clip_val=None if _is_gan(model) else clip, log_every_n_steps=log_every, logger=logger,
                   callbacks=[clock], enable_checkpointing=False, limit_val_batches=0, num_sanity_val_steps=0,
                   enable_model_summary=False, default_root_dir=str(out))
    trainer = Trainer(**(options | trainer_options))
    trainer.fit(model, datamodule=FixedBatches(batches, datamodule))
    logger.experiment.finish()
    return clock.kit, clock.plain


def _is_gan(model: Any) -> bool:
    from multimodal_kit.methods.gan import ConditionalGAN

    return isinstance(model, ConditionalGAN)


def measure(experiment: str, args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    pair = experiment.split("_", 1)[1]
    extra = ["--data.init_args.embedded_options", json.dumps(QUICK_DATA[pair])] if args.quick else []
    model, datamodule, config = build(experiment, extra)
    datamodule.prepare_data()
    datamodule.setup("fit")
    if _is_gan(model) and model.hparams.media == "audio":
        from multimodal_kit.methods.generated_media import estimate_audio_statistics

        estimate_audio_statistics(model.space, datamodule, model.hparams.max_frames)  # as the GAN's setup does
    model.tokenizer = datamodule.tokenizer
    samples_per_s_loader, batches = loader_rate(datamodule, args.warmup + args.steps)
    while len(batches) < args.warmup + args.steps:  # a tiny data set: cycle its batches
        batches += batches[: args.warmup + args.steps - len(batches)]
    batch_size = statistics.median(len(b["id"]) for b in batches)
    clip = config.trainer.get("gradient_clip_val") or model.hparams.get("clip_grad_norm") or None
    log_every = config.trainer.get("log_every_n_steps") or 50
    cuda = torch.cuda.is_available()
    precisions = args.precision or (["32-true", "bf16-mixed"] if cuda else ["32-true"])
    initial = copy.deepcopy(model.state_dict())
    rows = []
    for precision in precisions:
        model.load_state_dict(initial)
        kit, plain = paired_times(model, batches, "gpu" if cuda else "cpu", precision, clip, log_every, out,
                                  datamodule)
        kit, plain = kit[args.warmup:], plain[args.warmup:]
        kit_rate, plain_rate = batch_size / statistics.median(kit), batch_size / statistics.median(plain)
        ratios = [p / k for k, p in zip(kit, plain, strict=True)]  # per step pair
        rows.append({"experiment": experiment, "device": torch.cuda.get_device_name() if cuda else "cpu",
                     "precision": precision, "batch_size": batch_size, "steps": len(kit),
                     "kit_samples_per_s": kit_rate, "plain_samples_per_s": plain_rate,
                     "ratio": statistics.median(ratios),
                     "ratio_quartiles": statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3,
                     "loader_samples_per_s": samples_per_s_loader, "loader_over_step": samples_per_s_loader / kit_rate,
                     "num_workers": datamodule.num_workers})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    cpu = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu}, torch {torch.__version__}, with "
        f"`python benchmarks/overhead.py`: {args.steps} kit steps, each followed by a hand-written step on the same "
        f"batch (after {args.warmup} warm-up pairs); samples/s from median step times, kit/plain = median of the "
        "per-pair ratios (interquartile range in brackets). *kit* = `Trainer.fit` with the experiment's "
        "settings and an offline W&B logger; *plain* = a hand-written loop on the same model, weights and batches. "
        "*loader* = the DataModule's training loader alone with default settings (`num_workers` 0, media "
        "preloaded). Targets: kit/plain ≥ 0.97, loader/step ≥ 5.",
        "",
        "| experiment | device | precision | batch | kit samples/s | plain samples/s | kit/plain | loader samples/s "
        "| loader/step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['experiment']} | {r['device']} | {r['precision']} | {r['batch_size']:.0f} | "
                     f"{r['kit_samples_per_s']:.0f} | {r['plain_samples_per_s']:.0f} | {r['ratio']:.3f} "
                     f"[{r['ratio_quartiles'][0]:.2f}–{r['ratio_quartiles'][2]:.2f}] | "
                     f"{r['loader_samples_per_s']:.0f} | {r['loader_over_step']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", nargs="+", default=EXPERIMENTS, choices=EXPERIMENTS)
    parser.add_argument("--steps", type=int, default=60, help="timed step pairs")
    parser.add_argument("--warmup", type=int, default=5, help="untimed step pairs at the start")
    parser.add_argument("--precision", nargs="+", default=None,
                        help="default: 32-true, and bf16-mixed too on CUDA")
    parser.add_argument("--quick", action="store_true", help="tiny data and few steps: only checks the script works")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "overhead"))
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 2, 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", "offline")
    rows: list[dict[str, Any]] = []
    for experiment in args.experiments:
        rows += measure(experiment, args, out)
        (out / "figures.json").write_text(json.dumps(rows, indent=2))
    text = report(rows, args)
    print(text)
    if not args.quick:
        update_results(SECTION, text)


if __name__ == "__main__":
    main()
