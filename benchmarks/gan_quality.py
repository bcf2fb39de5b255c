"""Benchmark: the conditional GAN, text → image on ``shapes`` and text → audio on ``spoken`` (single words), scored
by networks the kit trains.

For each variant: ``mmkit fit`` an evaluator (the shipped attention captioner, or the attention speech recognizer on
single words, each for a fixed number of epochs) and, for images, an R-precision judge (the shipped dual encoder) →
``mmkit fit -c experiments/gan_<pair>.yaml --model.init_args.evaluator <its best checkpoint>`` (the experiment's
own budget of training samples) → ``mmkit test`` on the GAN's best checkpoint (images: by the geometric reader's
validation exact match; sound: by the validation cycle score), with the judge. Images are scored first by the
geometric reader (``test/read_*``, no learned parameters), then by the evaluator's cycle scores and the judge's
``test/r_precision``; each also on the real test media (``test/real_*``): the ceiling. Prints a table and writes
its section of ``benchmarks/RESULTS.md``. ``--quick`` runs a tiny version (the test suite checks it).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    benchmark_main,
    budget_text,
    fit_and_test,
    load_trained,
    reached,
    samples_to_all,
)

SECTION = "Conditional GAN, read by the geometric reader and by cycle scores — `make bench-gan`"
#: the evaluators, each its experiment file for a fixed number of epochs (captions: 6 × 10,048 scenes; words:
#: 20 × 6,000 single words), not the GAN's budget
EVALUATORS: dict[str, list[str]] = {
    "text-image": ["-c", "experiments/attention_image_caption.yaml", "--trainer.max_epochs", "6"],
    "text-audio": ["-c", "experiments/attention_text_audio.yaml", "--trainer.max_epochs", "20",
                   "--data.init_args.embedded_options", '{"single_word": true}'],
}
#: per vision-aided variant, the captioner whose frozen encoder its feature discriminator reads: another network
#: than the evaluator (a Seq2Seq captioner, 6 × 10,048 scenes), so the generator is not scored by the encoder it
#: trained against
FEATURE_ENCODERS: dict[str, list[str]] = {
    "text-image": ["-c", "experiments/seq2seq_image_caption.yaml", "--trainer.max_epochs", "6"],
}
FEATURE_ENCODERS["text-image-600k"] = FEATURE_ENCODERS["text-image"]
#: per pair, the dual encoder that ranks each test prompt among 99 other test captions by its image (R-precision,
#: AttnGAN's protocol): the shipped CLIP-style file as it is, trained apart from the GAN and its evaluator.
#: None for the spoken single words: a judge trained on whole utterances, ranking among a few dozen words, would
#: say little
JUDGES: dict[str, list[str]] = {"text-image": ["-c", "experiments/contrastive_image_caption.yaml"]}
SCRATCH = ["-c", "experiments/gan_image_caption.yaml"]
GANS: dict[str, list[str]] = {
    "text-image": ["-c", "experiments/vision_aided_gan_image_caption.yaml"],
    # the vision-aided file over issue 31's whole budget: 59 epochs × 10,048 = 592,832 samples (its cosine
    # learning rates decay to zero at the last of them)
    "text-image-600k": ["-c", "experiments/vision_aided_gan_image_caption.yaml", "--trainer.max_epochs", "59"],
    # ablation: the discriminator trained from scratch alone (no feature discriminator)
    "text-image-scratch": SCRATCH,
    # ablations of the scratch GAN, one change each (issue 31's list of what is known to work for crisp small
    # images): resize-convolution in the generator; hinge loss with spectral norm and DF-GAN's matching-aware
    # gradient penalty; DiffAugment; no EMA generator;
    "text-image-scratch-resize": [*SCRATCH, "--model.init_args.generator_upsample", "resize"],
    "text-image-scratch-hinge": [*SCRATCH, "--model.init_args.loss", "hinge", "--model.init_args.spectral_norm",
                                 "true", "--model.init_args.gradient_penalty", "2.0"],
    "text-image-scratch-augment": [*SCRATCH, "--model.init_args.augment", "true"],
    "text-image-scratch-no-ema": [*SCRATCH, "--model.init_args.ema_decay", "null"],
    # ... and a second discriminator at half the resolution; two D steps per G step
    "text-image-scratch-two-scale": [*SCRATCH, "--model.init_args.discriminator_scales", "2"],
    "text-image-scratch-d2": [*SCRATCH, "--model.init_args.d_steps", "2"],
    # ... and hard wrong pairs: D's matching-aware loss pairs each real image with the batch's nearest other
    # caption (often one word apart: the shape, the size), not a random one (mostly another colour)
    "text-image-scratch-nearest": [*SCRATCH, "--model.init_args.wrong_texts", "nearest"],
    # ... and BicycleGAN's cVAE-GAN term: G redraws each real image from its caption and the noise an encoder
    # reads in it (L1 weight 10, KL 0.01, as the paper), so it learns from the data what "triangle" draws
    "text-image-scratch-redraw": [*SCRATCH, "--model.init_args.reconstruction", "10"],
    # ... and a generator of residual blocks (two convs per scale and a skip path; BigGAN, DF-GAN)
    "text-image-scratch-residual": [*SCRATCH, "--model.init_args.generator_blocks", "residual"],
    "text-audio": ["-c", "experiments/gan_text_audio.yaml"],
    # ablation: both networks twice as wide, cosine learning rates, half the budget
    "text-audio-w32": ["-c", "experiments/gan_text_audio.yaml", "--model.init_args.generator_width", "32",
                       "--model.init_args.discriminator_width", "32", "--model.init_args.lr_decay", "cosine",
                       "--trainer.max_epochs", "17"],
}
DEFAULT = ["text-image", "text-audio"]


def pair(variant: str) -> str:
    """The pair a variant generates (what its evaluator reads, and its targets)."""
    return "text-audio" if variant.startswith("text-audio") else "text-image"


#: each pair's targets (all higher-is-better): (metric, target); images by the geometric reader (issue 31), sound
#: by the recognizer's cycle reading
TARGETS = {"text-image": [("read_shape", 0.8), ("read_exact_match", 0.4)],
           "text-audio": [("cycle_exact_match", 0.75)]}
#: the geometric reader's scores of generated shapes images, as the report's columns
READ = ("exact_match", "colour", "shape", "size", "relation", "count")
#: each pair's cycle score and its label in the table
SCORES = {"text-image": ("cycle_bleu4", "BLEU-4"), "text-audio": ("cycle_wer", "WER")}
QUICK_DATA = {
    "text-image": ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}'],
    "text-audio": ["--data.init_args.embedded_options",
                   '{"num_train": 64, "num_validation": 16, "num_test": 16, "single_word": true}'],
}
QUICK = ["--trainer.max_epochs", "1", "--trainer.logger", "false", "--data.init_args.batch_size", "16",
         "--data.init_args.eval_batch_size", "16"]
#: small networks for --quick (the test suite only checks the script works)
QUICK_EVALUATORS = {
    "text-image": ["--model.init_args.d_model", "16", "--model.init_args.ff_dim", "32", "--model.init_args.encoder",
                   '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}'],
    "text-audio": ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                   "--model.init_args.attention_dim", "16", "--model.init_args.encoder",
                   '{"class_path": "multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder", '
                   '"init_args": {"conv_channels": 4, "hidden_dim": 16}}'],
}
QUICK_FEATURE_ENCODER = ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                         "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", '
                         '"init_args": {"widths": [8, 16]}}']
QUICK_GAN = ["--model.init_args.noise_dim", "8", "--model.init_args.cond_dim", "16",
             "--model.init_args.generator_width", "4", "--model.init_args.discriminator_width", "4"]


#: what :func:`attributes_read` scores, with its chance level (uniform guessing over the set's values)
ATTRIBUTES = {"colour": 1 / 6, "shape": 1 / 4, "size": 1 / 2, "relation": 1 / 4, "objects": 1 / 2}


def _same_words(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    return sum(x == y for x, y in zip(a, b, strict=True))


def words_right(objects: list[tuple[str, str, str]], relation: str,
                read: tuple[list[tuple[str, str, str]], str] | None) -> dict[str, int]:
    """How many words of one scene (``(size, colour, shape)`` per object, relation) a reading of it
    (:func:`~multimodal_kit.data.embedded.shapes.read_caption`) gets right, per :data:`ATTRIBUTES`. Nothing counts
    unless the number of objects is right; a two-object reading is compared as written or in the other order
    ("<b> <inverse> <a>" is the same scene), whichever fits better."""
    from multimodal_kit.data.embedded.shapes import INVERSE

    right = dict.fromkeys(ATTRIBUTES, 0)
    if read is None or len(read[0]) != len(objects):
        return right
    swapped = (read[0][::-1], INVERSE.get(read[1], ""))
    fit = [(o[1] == relation) + sum(map(_same_words, objects, o[0])) for o in (read, swapped)]
    got, got_relation = swapped if fit[1] > fit[0] else read
    right["objects"] = 1
    right["relation"] = int(bool(relation) and got_relation == relation)
    for want, have in zip(objects, got, strict=True):
        for k, name in enumerate(("size", "colour", "shape")):
            right[name] += want[k] == have[k]
    return right


@torch.no_grad()
def attributes_read(gan_ckpt: str, evaluator_ckpt: str) -> dict[str, dict[str, float]]:
    """Which words of a ``shapes`` prompt the generated test images get right: the evaluator's caption of each
    generated (and, as the ceiling, each real) test image is read back to objects and relation
    (:func:`~multimodal_kit.data.embedded.shapes.read_caption`) and compared with the scene's. Attributes are
    scored object by object when the count is right (:func:`words_right`); ``objects`` is the share with the
    right count. Returns ``{"generated": {...}, "real": {...}}``, each attribute's share."""
    from multimodal_kit.data.embedded import load_embedded
    from multimodal_kit.data.embedded.shapes import read_caption
    from multimodal_kit.evaluation import CycleEvaluator

    gan, dm = load_trained(gan_ckpt, eval_batch_size=250)
    gan.codec = dm.codec
    evaluator = CycleEvaluator(evaluator_ckpt)
    test = load_embedded(dm.hparams["source"], dm.hparams.get("embedded_options"))["test"]
    scenes = {i: ([(o["size"], o["color"], o["shape"]) for o in objects], relation)
              for i, objects, relation in zip(test["id"], test["objects"], test["relation"], strict=True)}
    counts = {kind: dict.fromkeys(ATTRIBUTES, 0) for kind in ("generated", "real")}
    totals = dict.fromkeys(ATTRIBUTES, 0)
    for batch in dm.test_dataloader():
        readings = {kind: evaluator.read(evaluator.batch(gan.media_values(media))) for kind, media in
                    (("generated", gan.generated_media(batch)), ("real", gan.real_media(batch)))}
        for j, item in enumerate(batch["id"]):
            objects, relation = scenes[item]
            totals["objects"] += 1
            for name in ("colour", "shape", "size"):
                totals[name] += len(objects)
            totals["relation"] += bool(relation)
            for kind, texts in readings.items():
                for name, n in words_right(objects, relation, read_caption(texts[j])).items():
                    counts[kind][name] += n
    return {kind: {name: c[name] / max(totals[name], 1) for name in ATTRIBUTES} for kind, c in counts.items()}


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    kind = pair(name)
    quick_args = [*QUICK_DATA[kind], *QUICK] if quick else None
    evaluator = fit_and_test(EVALUATORS[kind], out / "evaluator", quick_args and [*quick_args, *QUICK_EVALUATORS[kind]],
                             reuse, budgeted=False)
    features, feature_args = None, []
    if name in FEATURE_ENCODERS:
        features = fit_and_test(FEATURE_ENCODERS[name], out / "feature_encoder",
                                quick_args and [*quick_args, *QUICK_FEATURE_ENCODER], reuse, budgeted=False)
        feature_args = ["--model.init_args.feature_encoder.init_args.checkpoint", features["checkpoint"]]
    judge, judge_args = None, []
    if kind in JUDGES:
        judge = fit_and_test(JUDGES[kind], out / "judge", quick_args, reuse, budgeted=False)
        judge_args = ["--model.init_args.r_precision_judge", judge["checkpoint"]]
    gan = fit_and_test([*GANS[name], "--model.init_args.evaluator", evaluator["checkpoint"], *feature_args],
                       out / "gan", quick_args and [*quick_args, *QUICK_GAN], reuse, test_args=tuple(judge_args))
    to_target = samples_to_all(gan["history"], [(f"val/{metric}", target) for metric, target in TARGETS[kind]])
    read = attributes_read(gan["checkpoint"], evaluator["checkpoint"]) if kind == "text-image" else None
    return {"variant": name, "evaluator": evaluator, "feature_encoder": features, "judge": judge, **gan,
            "samples_to_target": to_target, "attributes": read}


#: the most training samples issue 31 allows a GAN to reach the reader's targets in
BUDGET = 600_000


def draw_curves(rows: list[dict], path: Path) -> None:
    """The image variants' validation curves as a picture: read shape and read exact match (one panel each) against
    training samples, one line per variant, the targets dashed and the budget dotted."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    images = [r for r in rows if pair(r["variant"]) == "text-image" and r.get("history")]
    if not images:
        return
    targets = dict(TARGETS["text-image"])
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for axis, metric in zip(axes, ("read_shape", "read_exact_match"), strict=True):
        for r in images:
            samples = [h["samples"] / 1000 for h in r["history"]]
            axis.plot(samples, [h[f"val/{metric}"] for h in r["history"]], label=r["variant"], linewidth=1.2,
                      linestyle="-" if "scratch" not in r["variant"] else (0, (4, 1)))
        axis.axhline(targets[metric], color="black", linestyle="--", linewidth=1, label=f"target {targets[metric]:g}")
        axis.axvline(BUDGET / 1000, color="grey", linestyle=":", linewidth=1, label=f"budget {BUDGET // 1000}k")
        axis.set(title=f"val/{metric} (geometric reader)", xlabel="training samples (thousands)", ylim=(0, 1))
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def targets_text(variant: str) -> str:
    return ", ".join(f"{metric} ≥ {target:g}" for metric, target in TARGETS[pair(variant)])


def report(rows: list[dict]) -> str:
    images = [r for r in rows if pair(r["variant"]) == "text-image"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each GAN is its experiment file run as is for its budget ({budget_text(rows)}) with "
        "an evaluator trained just before (the attention captioner for 6 epochs / the attention speech recognizer "
        "on single words for 20 epochs); `mmkit test` on the GAN's best checkpoint (images: by the validation "
        "reader exact match; sound: by the validation cycle score) generates one sample per test prompt (shapes: "
        "1,000 scenes; spoken: 1,000 words from voices never heard in training). *samples to target*: the first "
        "validation that met every target of the row.",
    ]
    if images:
        lines += [
            "", "Images, read by the geometric reader (no learned parameters; "
            "`multimodal_kit/data/embedded/shapes_reader.py`): the share of test prompts whose image reads as the "
            "whole caption (exact match) and per attribute; *real* = the reader on the real test images (its "
            "ceiling).", "",
            "| variant | read exact match | real | " + " | ".join(f"read {a}" for a in READ[1:]) +
            " | R-precision | real | targets | samples to target (val) | train min | samples/s | params |",
            "|---" * (len(READ) + 9) + "|",
        ]
        for r in images:
            t = r["test"]
            lines.append(f"| {r['variant']} | {t['test/read_exact_match']:.3f} | {t['test/real_read_exact_match']:.3f} | "
                         + " | ".join(f"{t[f'test/read_{a}']:.3f}" for a in READ[1:])
                         + "".join(f" | {t[k]:.3f}" if k in t else " | —" for k in ("test/r_precision",
                                                                                    "test/real_r_precision"))
                         + f" | {targets_text(r['variant'])} | {reached(r['samples_to_target'], r['history'])} | "
                         f"{r['train_minutes']:.1f} | {r['samples_per_s']:.0f} | {r['parameters'] / 1e6:.2f}M |")
        lines += ["", "![validation curves of the image GANs, read by the geometric reader](figures/gan_quality.png)",
                  "", "Validation after each epoch: reader exact match / read shape (training samples):", ""]
        lines += [f"- {r['variant']}: " + ", ".join(f"{h['val/read_exact_match']:.2f} / {h['val/read_shape']:.2f} "
                                                   f"({h['samples'] / 1000:.0f}k)" for h in r["history"])
                  for r in images]
    lines += [
        "", "Cycle scores, read by the evaluator (a network the kit trained: it can be fooled by textures that "
        "another network also reads); *real* = the evaluator on the real test media through the same path (for "
        "audio: padded to 1.28 s and through Griffin-Lim), the ceiling. Word accuracy = cycle exact match. MCD: "
        "mel-cepstral distortion (dB) after DTW against the real recording of the same word.", "",
        "| variant | cycle score (test) | real (ceiling) | cycle exact match / word acc. | real (ceiling) "
        "| FID (evaluator features) | MCD | targets | samples to target (val) | train min | samples/s | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["test"]
        score, label = SCORES[pair(r["variant"])]
        mcd = f"{t['test/mcd']:.2f}" if "test/mcd" in t else "—"
        lines.append(f"| {r['variant']} | {label} {t[f'test/{score}']:.3f} | {t[f'test/real_{score}']:.3f} | "
                     f"{t['test/cycle_exact_match']:.3f} | {t['test/real_cycle_exact_match']:.3f} | "
                     f"{t['test/fid']:.2f} | {mcd} | {targets_text(r['variant'])} | "
                     f"{reached(r['samples_to_target'], r['history'])} | "
                     f"{r['train_minutes']:.1f} | {r['samples_per_s']:.0f} | {r['parameters'] / 1e6:.2f}M |")
    lines += ["", "Validation after each epoch: cycle score / cycle exact match / FID (training samples):", ""]
    for r in rows:
        score = SCORES[pair(r["variant"])][0]
        lines.append(f"- {r['variant']} ({score}): " + ", ".join(
            f"{h[f'val/{score}']:.2f} / {h['val/cycle_exact_match']:.2f} / {h['val/fid']:.1f} ({h['samples'] / 1000:.0f}k)"
            for h in r["history"]))
    for r in rows:
        if r.get("attributes"):
            read = r["attributes"]
            lines += ["", f"What the evaluator reads in {r['variant']}'s generated test images, word by word (share "
                      "right; real = the real test images; chance = a uniform guess):", "",
                      "| | " + " | ".join(ATTRIBUTES) + " |", "|---" * (len(ATTRIBUTES) + 1) + "|",
                      *(f"| {kind} | " + " | ".join(f"{read[kind][a]:.3f}" for a in ATTRIBUTES) + " |"
                        for kind in ("generated", "real")),
                      "| chance | " + " | ".join(f"{c:.3f}" for c in ATTRIBUTES.values()) + " |"]
    lines += ["", "Evaluators (own test split, real media): " + "; ".join(
        f"{r['variant']}: " + json.dumps({k: round(v, 3) for k, v in r["evaluator"]["test"].items()
                                          if k in ("test/bleu4", "test/wer", "test/exact_match")})
        + f" after {r['evaluator']['history'][-1]['samples']:,} samples ({r['evaluator']['train_minutes']:.1f} min)"
        for r in rows)]
    lines += [f"R-precision judge of {r['variant']} (experiments/contrastive_image_caption.yaml, own test split): "
              f"text → image R@1 {r['judge']['test']['test/t2m_r1']:.3f}, image → text R@1 "
              f"{r['judge']['test']['test/m2t_r1']:.3f} after {r['judge']['history'][-1]['samples']:,} samples "
              f"({r['judge']['train_minutes']:.1f} min)" for r in rows if r.get("judge")]
    lines += [f"Feature encoder of {r['variant']}'s vision-aided discriminator (frozen; a Seq2Seq captioner, own "
              f"test split): BLEU-4 {r['feature_encoder']['test']['test/bleu4']:.3f} after "
              f"{r['feature_encoder']['history'][-1]['samples']:,} samples "
              f"({r['feature_encoder']['train_minutes']:.1f} min)" for r in rows if r.get("feature_encoder")]
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, GANS, "gan_quality", SECTION, run_variant, report, default=DEFAULT, draw=draw_curves)


if __name__ == "__main__":
    main()
