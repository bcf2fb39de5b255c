"""Benchmark: captioning methods on the embedded shapes set, each exactly as a user runs its experiment.

For each variant: ``mmkit fit -c experiments/<file>`` (its 10-minute budget) → ``mmkit test`` on the best
checkpoint → test BLEU-4 and exact match split by one-object and two-object (relation) scenes. Prints a table
and writes ``benchmarks/RESULTS.md``. ``--quick`` runs a tiny version (the test suite checks the script works).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import benchmark_main, fit_and_test, history_lines  # noqa: E402

SECTION = "Captioning on embedded `shapes` — `make bench`"
VARIANTS: dict[str, list[str]] = {
    "seq2seq": ["-c", "experiments/seq2seq_image_caption.yaml"],
    "attention-additive": ["-c", "experiments/attention_image_caption.yaml"],
    "attention-general": ["-c", "experiments/attention_image_caption.yaml", "--model.init_args.attention", "general"],
    "attention-dot": ["-c", "experiments/attention_image_caption.yaml", "--model.init_args.attention", "dot"],
    "attention-multihead": ["-c", "experiments/attention_image_caption.yaml", "--model.init_args.attention",
                            "multihead", "--model.init_args.lr", "5e-4", "--model.init_args.warmup_steps", "150"],
}
QUICK = ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}',
         "--trainer.max_epochs", "1", "--trainer.logger", "false"]


@torch.no_grad()
def scores_by_scene(ckpt: Path) -> dict[str, float]:
    """Test BLEU-4 and exact match on one-object and on two-object (relation) scenes, from the checkpoint."""
    import importlib

    from multimodal_kit.checkpoints import checkpoint_config
    from multimodal_kit.data.embedded import load_embedded
    from multimodal_kit.data.image_caption import ImageCaptionDataModule
    from multimodal_kit.data.text import canonical_text, decode_tokens
    from multimodal_kit.metrics import caption_metrics

    config = checkpoint_config(ckpt)
    module, name = config["model"]["class_path"].rsplit(".", 1)
    model = getattr(importlib.import_module(module), name).load_from_checkpoint(ckpt, weights_only=True).eval()
    data = config["data"]["init_args"]
    dm = ImageCaptionDataModule(source=data["source"], embedded_options=data.get("embedded_options"),
                                tokenizer=data["tokenizer"], eval_batch_size=250)
    num_objects = list(load_embedded(data["source"], data.get("embedded_options"))["test"]["num_objects"])
    groups = {1: caption_metrics("one", full=True), 2: caption_metrics("two", full=True)}
    index = 0
    for batch in dm.test_dataloader():
        predictions = decode_tokens(dm.tokenizer, model.generate(batch).tokens)
        for pred, refs in zip(predictions, batch["references"], strict=True):
            groups[num_objects[index]].update([canonical_text(dm.tokenizer, pred)],
                                              [[canonical_text(dm.tokenizer, r) for r in refs]])
            index += 1
    out = {}
    for group in groups.values():
        out |= {k: float(v) for k, v in group.compute().items() if k.endswith(("bleu4", "exact_match"))}
    return out


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    result = fit_and_test(VARIANTS[name], out, QUICK if quick else None, reuse)
    top = max(result["history"], key=lambda r: r["val/bleu4"])
    return {"variant": name, **result, "scenes": scores_by_scene(Path(result["checkpoint"])),
            "best_val_bleu4": top["val/bleu4"], "minutes_to_best": top["minutes"]}


def report(rows: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each variant is its experiment file run as is (10-minute training budget, same CNN "
        "encoder), then `mmkit test` on its best checkpoint (by val BLEU-4). Greedy decoding.",
        "",
        "| variant | test BLEU-4 | CIDEr-D | exact match | BLEU-4 one object | BLEU-4 two objects | exact match "
        "two objects | min to best val | epochs | samples/s | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, s = r["test"], r["scenes"]
        lines.append(f"| {r['variant']} | {t['test/bleu4']:.3f} | {t['test/cider']:.2f} | {t['test/exact_match']:.3f} "
                     f"| {s['one/bleu4']:.3f} | {s['two/bleu4']:.3f} | {s['two/exact_match']:.3f} | "
                     f"{r['minutes_to_best']:.1f} | {r['epochs']} | {r['samples_per_s']:.0f} | "
                     f"{r['parameters'] / 1e6:.2f}M |")
    lines += ["", "val BLEU-4 after each epoch (minutes):", ""]
    lines += history_lines(rows, "val/bleu4", 2)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "caption_quality", SECTION, run_variant, report)


if __name__ == "__main__":
    main()
