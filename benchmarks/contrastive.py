"""Benchmark: contrastive dual encoders — CLIP-style on the embedded ``shapes`` set, CLAP-style on ``spoken`` —
each experiment file run as is for its budget, then ``mmkit test`` on its best checkpoint (by validation t2m_r5):
Recall@1/5/10 both ways over the whole test split and zero-shot accuracy.

Two further figures put the image numbers in context:

- *ceiling*: a caption often fits several test scenes (one-object captions above all), and text → image Recall@K
  counts only the query's own scene. A model that ranks every scene of the query's caption first, in random order,
  scores min(1, K / n) per query (n: test scenes with that caption) — the best any model can do on this split.
- *captioner likelihood* (``--variants ... likelihood``): the ranking of ``examples/caption_retrieval.py`` — every
  test image scored for a caption by a trained cross-modal attention captioner's mean token log-probability — on
  the same 1,000 test pairs, for ``LIKELIHOOD_QUERIES`` captions (each against all 1,000 images): recall and wall
  time per query, against the dual encoder's (its 1,000-image index built once, then one text embedding and one
  matrix product per query).

``--quick`` runs a tiny version (the test suite checks it).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    benchmark_main,
    budget_text,
    fit_and_test,
    history_lines,
    load_trained,
    reached,
    samples_to_all,
)

SECTION = "Contrastive dual encoders (CLIP on `shapes`, CLAP on `spoken`) — `make bench-contrastive`"
VARIANTS: dict[str, list[str]] = {"image": ["-c", "experiments/contrastive_image_caption.yaml"],
                                  "audio": ["-c", "experiments/contrastive_text_audio.yaml"],
                                  "likelihood": ["-c", "experiments/attention_image_caption.yaml",
                                                 "--trainer.max_epochs", "6"]}
QUICK = {"image": ["--data.init_args.embedded_options", '{"num_train": 96, "num_validation": 32, "num_test": 32}'],
         "audio": ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}']}
QUICK_ALL = ["--trainer.max_epochs", "1", "--trainer.logger", "false", "--data.init_args.batch_size", "16"]
TARGETS = {"image": {"t2m_r1": 0.5, "t2m_r5": 0.9}, "audio": {"m2t_r1": 0.8}}
LIKELIHOOD_QUERIES = 100
RECALLS = [f"{d}_r{k}" for d in ("t2m", "m2t") for k in (1, 5, 10)]


def caption_ceiling(num_test: int | None = None) -> dict[str, float]:
    """The best text → image Recall@K any model can score on the shapes test split (see the module docstring)."""
    from multimodal_kit.data.embedded import load_embedded

    texts = load_embedded("shapes", {"num_test": num_test} if num_test else None)["test"]["text"]
    count = Counter(texts)
    return {f"t2m_r{k}": sum(min(1.0, k / count[t]) for t in texts) / len(texts) for k in (1, 5, 10)}


@torch.no_grad()
def likelihood_ranking(captioner_ckpt: str, encoder_ckpt: str, queries: int) -> dict[str, float]:
    """Text → image Recall@1/5/10 of ``queries`` test captions against every test image, by the captioner's mean
    token log-probability (examples/caption_retrieval.py's score) and by the dual encoder's cosine, with the
    wall time per query of each (the dual encoder's index of the test images built once, timed apart)."""
    from multimodal_kit.tasks.contrastive.retrieval import ranks

    captioner, data = load_trained(captioner_ckpt, eval_batch_size=250)
    encoder, encoder_data = load_trained(encoder_ckpt, eval_batch_size=250)
    batches = list(data.test_dataloader())
    images = torch.cat([b["image"] for b in batches])  # (N, 3, S, S)
    texts = [t for b in batches for t in b["text"]][:queries]
    start = time.perf_counter()
    encoded = [captioner.encode({"image": images[i:i + 250]}) for i in range(0, len(images), 250)]
    memory = {k: torch.cat([e[k] for e in encoded]) for k in encoded[0]}
    scores = []
    for text in texts:  # one caption against every image: the captioner reads it after each
        tokens = data.collator()([{"text": text, "references": [text], "id": "q"}])["text_tokens"]
        logp = []
        for i in range(0, len(images), 250):
            part = {k: v[i:i + 250] for k, v in memory.items()}
            captions = tokens.expand(len(part[next(iter(part))]), -1)
            logits = captioner.teacher_forced_logits(part, captions[:, :-1]).float()
            targets = captions[:, 1:]
            real = targets != captioner.hparams.pad_id
            token_logp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1) * real
            logp.append(token_logp.sum(1) / real.sum(1))
        scores.append(torch.cat(logp))
    likelihood_seconds = (time.perf_counter() - start) / len(texts)
    likelihood_ranks = ranks(torch.stack(scores), torch.arange(len(texts)))

    start = time.perf_counter()
    index = torch.cat([encoder.embed_media({"image": images[i:i + 250]}) for i in range(0, len(images), 250)])
    index_seconds = time.perf_counter() - start
    start = time.perf_counter()
    query_scores = torch.cat([encoder.embed_texts([t]) @ index.T for t in texts])  # one query at a time
    dual_seconds = (time.perf_counter() - start) / len(texts)
    dual_ranks = ranks(query_scores, torch.arange(len(texts)))
    del encoder_data
    out = {"queries": len(texts), "gallery": len(images), "likelihood_s_per_query": likelihood_seconds,
           "dual_s_per_query": dual_seconds, "dual_index_s": index_seconds}
    for k in (1, 5, 10):
        out[f"likelihood_t2m_r{k}"] = float((likelihood_ranks < k).float().mean())
        out[f"dual_t2m_r{k}"] = float((dual_ranks < k).float().mean())
    return out


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    quick_args = QUICK_ALL + QUICK["image" if name == "likelihood" else name] if quick else None
    result = fit_and_test(VARIANTS[name], out, quick_args, reuse)
    if name == "likelihood":
        encoder = Path(out).parent / "image" / "run" / "checkpoints"
        (best,) = encoder.glob("epoch*.ckpt")
        ranking = likelihood_ranking(result["checkpoint"], str(best), 8 if quick else LIKELIHOOD_QUERIES)
        return {"variant": name, **result, "ranking": ranking}
    targets = [(f"val/{metric}", target) for metric, target in TARGETS[name].items()]
    return {"variant": name, **result, "samples_to_target": samples_to_all(result["history"], targets)}


def report(rows: list[dict]) -> str:
    trained = [r for r in rows if r["variant"] != "likelihood"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each variant is its experiment file run as is for its budget ({budget_text(trained)}), "
        "then `mmkit test` on its best checkpoint (by val/t2m_r5) over the whole test split (1,000 shapes scenes; "
        "1,000 spoken utterances by voices never heard in training). t2m = text → media, m2t = media → the "
        "split's distinct texts; *same text*: the top medium's own caption is the query's. Targets: image "
        "t2m_r1 ≥ 0.5 and t2m_r5 ≥ 0.9; audio m2t_r1 ≥ 0.8.",
        "",
        "| variant | " + " | ".join(RECALLS) + " | t2m_r1 same text | zero-shot acc. | samples to target (val) "
        "| train min | samples/s | params |",
        "|---|" + "---|" * len(RECALLS) + "---|---|---|---|---|---|",
    ]
    for r in trained:
        t = r["test"]
        lines.append(f"| {r['variant']} | " + " | ".join(f"{t[f'test/{m}']:.3f}" for m in RECALLS)
                     + f" | {t['test/t2m_r1_same_text']:.3f} | {t.get('test/zero_shot_accuracy', float('nan')):.3f}"
                     f" | {reached(r['samples_to_target'], r['history'])} | {r['train_minutes']:.1f} | "
                     f"{r['samples_per_s']:.0f} | {r['parameters'] / 1e6:.2f}M |")
    if any(r["variant"] == "image" for r in trained):
        ceiling = caption_ceiling()
        lines.append("| *ceiling* (image: every scene of the query's caption first) | "
                     + " | ".join(f"{ceiling[m]:.3f}" if m in ceiling else "" for m in RECALLS) + " | 1.000 | | | | | |")
        for metric, target in TARGETS["image"].items():
            if ceiling.get(metric, 1.0) < target:
                lines += ["", f"The image target {metric} ≥ {target} lies above this test split's ceiling "
                          f"({ceiling[metric]:.3f}): no model can meet it, so *samples to target* reads \"not "
                          "reached\" whatever the model; compare the row with the ceiling instead."]
    for r in rows:
        if r["variant"] != "likelihood":
            continue
        g = r["ranking"]
        lines += ["", f"Against the captioner-likelihood ranking of examples/caption_retrieval.py ({g['queries']} test "
                  f"captions, each against all {g['gallery']} test images; the captioner: "
                  f"experiments/attention_image_caption.yaml for {r['history'][-1]['samples']:,} samples, "
                  f"test BLEU-4 {r['test']['test/bleu4']:.3f}):", "",
                  "| ranking | t2m_r1 | t2m_r5 | t2m_r10 | seconds per query |", "|---|---|---|---|---|",
                  f"| captioner likelihood | {g['likelihood_t2m_r1']:.3f} | {g['likelihood_t2m_r5']:.3f} | "
                  f"{g['likelihood_t2m_r10']:.3f} | {g['likelihood_s_per_query']:.3f} |",
                  f"| dual encoder (index of {g['gallery']} images built once in {g['dual_index_s']:.2f} s) | "
                  f"{g['dual_t2m_r1']:.3f} | {g['dual_t2m_r5']:.3f} | {g['dual_t2m_r10']:.3f} | "
                  f"{g['dual_s_per_query']:.4f} |",
                  "", f"Per query the dual encoder is {g['likelihood_s_per_query'] / g['dual_s_per_query']:.0f}× "
                  "faster: one text embedding and one matrix product, against one decoder pass per image."]
    lines += ["", "Validation Recall@1 text → media after each epoch (training samples):", ""]
    lines += history_lines(trained, "val/t2m_r1", 3)
    lines += ["", "Validation Recall@1 media → text:", ""]
    lines += history_lines(trained, "val/m2t_r1", 3)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "contrastive", SECTION, run_variant, report)


if __name__ == "__main__":
    main()
