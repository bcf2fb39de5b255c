"""Benchmark: speech synthesis on ``spoken`` in single-voice mode, attention (Tacotron-style) against Seq2Seq, at
the same budget of training samples, scored by a speech recognizer the kit trains.

``mmkit fit`` an evaluator (the Listen-Attend-Spell recognizer of attention_text_audio.yaml on the single voice),
then each synthesizer's experiment file with ``--model.init_args.evaluator`` and ``--trainer.max_steps`` = the
sample budget / batch size → ``mmkit test`` on its best checkpoint (by validation cycle WER). The test phrases are
then synthesized again and read by the evaluator, grouped by word count (the gap on 4–5-word phrases). Prints a
table and writes its section of ``benchmarks/RESULTS.md``. ``MMKIT_TTS_SAMPLES`` sets the budget (default 300,000);
``--quick`` runs a tiny version (the test suite checks it).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import benchmark_main, fit_and_test, load_trained, wer_by_words_table  # noqa: E402

SECTION = "Speech synthesis, attention vs Seq2Seq — `make bench`"
SAMPLES = int(os.environ.get("MMKIT_TTS_SAMPLES", 300_000))
BATCH = 64  # the experiment files' batch size
EVALUATOR_EPOCHS = 12  # × 6,000 utterances = 72,000 training samples (a budget in samples, not minutes)
VOICE = '{"voice": "en-us+m3"}'
EVALUATOR = ["-c", "experiments/attention_text_audio.yaml", "--data.init_args.embedded_options", VOICE,
             "--trainer.max_epochs", str(EVALUATOR_EPOCHS)]
VARIANTS: dict[str, list[str]] = {
    "attention": ["-c", "experiments/attention_speech_synthesis.yaml"],
    "seq2seq": ["-c", "experiments/seq2seq_speech_synthesis.yaml"],
}
TARGET = 0.10  # cycle WER
QUICK_DATA = ["--data.init_args.embedded_options",
              '{"num_train": 64, "num_validation": 16, "num_test": 16, "voice": "en-us+m3"}',
              "--trainer.max_epochs", "1", "--trainer.logger", "false", "--data.init_args.batch_size", "16",
              "--data.init_args.eval_batch_size", "16"]
QUICK_EVALUATOR = ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                   "--model.init_args.attention_dim", "16", "--model.init_args.encoder",
                   '{"class_path": "multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder", '
                   '"init_args": {"conv_channels": 4, "hidden_dim": 16}}']
QUICK_TTS = ["--model.init_args.embed_dim", "16", "--model.init_args.encoder_dim", "16",
             "--model.init_args.hidden_dim", "16", "--model.init_args.prenet_dims", "[16, 16]",
             "--model.init_args.postnet_channels", "8", "--model.init_args.max_frames", "60"]


def budget_args(quick: bool) -> list[str]:
    if quick:
        return []
    return ["--trainer.max_steps", str(SAMPLES // BATCH), "--trainer.max_epochs", "-1",
            "--trainer.max_time", "00:03:00:00"]


@torch.no_grad()
def wer_by_words(tts_checkpoint: str, evaluator_checkpoint: str) -> dict[int, float]:
    """The evaluator's WER on the synthesized test phrases, by the phrase's word count."""
    from torchmetrics.text import WordErrorRate

    from multimodal_kit.evaluation import CycleEvaluator

    method, datamodule = load_trained(tts_checkpoint)
    method.codec = datamodule.codec
    evaluator = CycleEvaluator(evaluator_checkpoint)
    groups: dict[int, WordErrorRate] = defaultdict(WordErrorRate)
    for batch in datamodule.test_dataloader():
        values = method.media_values(method.generate(batch))
        read = evaluator.read(evaluator.batch(values))
        for text, heard in zip(batch["text"], read, strict=True):
            groups[len(text.split())].update([heard], [evaluator.canonical(text)])
    return {n: float(metric.compute()) for n, metric in sorted(groups.items())}


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    quick_args = QUICK_DATA if quick else None
    evaluator = fit_and_test(EVALUATOR, out.parent / "evaluator", quick_args and [*quick_args, *QUICK_EVALUATOR],
                             True)
    result = fit_and_test([*VARIANTS[name], "--model.init_args.evaluator", evaluator["checkpoint"],
                           *budget_args(quick)], out, quick_args and [*quick_args, *QUICK_TTS], reuse)
    reached = next((h["samples"] for h in result["history"] if h["val/cycle_wer"] <= TARGET), None)
    return {"variant": name, "evaluator": evaluator, **result, "samples_to_target": reached,
            "wer_by_words": wer_by_words(result["checkpoint"], evaluator["checkpoint"])}


def report(rows: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each synthesizer is its experiment file with a budget of {SAMPLES:,} training "
        f"samples (--trainer.max_steps {SAMPLES // BATCH} × batch {BATCH}), read by a speech recognizer trained for "
        f"{rows[0]['evaluator']['history'][-1]['samples']:,} samples ({rows[0]['evaluator']['train_minutes']:.1f} "
        "min) on the same single voice just before; `mmkit test` on the best checkpoint "
        "(by validation cycle WER) synthesizes the 1,000 test phrases (1–5 words) freely. *real* = the recognizer "
        "on the real test audio through the same path (log-mel → Griffin-Lim), the ceiling.",
        "",
        "| variant | cycle WER (test) | real (ceiling) | cycle CER | mel L1 | stop acc. | alignment ok "
        "| samples to WER ≤ 0.10 (val) | train min | samples/s | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["test"]
        reached = f"{r['samples_to_target']:,}" if r["samples_to_target"] is not None else "not reached"
        alignment = f"{t['test/alignment_ok']:.3f}" if "test/alignment_ok" in t else "—"
        lines.append(f"| {r['variant']} | {t['test/cycle_wer']:.3f} | {t['test/real_cycle_wer']:.3f} | "
                     f"{t['test/cycle_cer']:.3f} | {t['test/mel_l1']:.3f} | {t['test/stop_accuracy']:.3f} | "
                     f"{alignment} | {reached} | {r['train_minutes']:.1f} | {r['samples_per_s']:.0f} | "
                     f"{r['parameters'] / 1e6:.2f}M |")
    lines += wer_by_words_table(rows, "Test cycle WER by phrase length (words):")
    lines += ["", "Validation cycle WER (training samples):", ""]
    for r in rows:
        lines.append(f"- {r['variant']}: " + ", ".join(f"{h['val/cycle_wer']:.3f} ({h['samples']:,})"
                                                       for h in r["history"]))
    lines += ["", "Evaluator (own test split, real audio): " + json.dumps(
        {k: round(v, 3) for k, v in rows[0]["evaluator"]["test"].items() if k in ("test/wer", "test/cer")})]
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "speech_synthesis", SECTION, run_variant, report)


if __name__ == "__main__":
    main()
