"""Benchmark: decoding with the pretrained LM's key–value cache against running the whole history at every step.

A randomly initialised LM of GPT-2 small's shape (12 layers, width 768, 12 heads, its 50,257-token vocabulary),
saved locally and loaded as ``PretrainedLM``'s decoder does (``prefix`` connector, 10 prefix embeddings mapped
from 49 source features of width 512), generates 60 tokens for a batch of 16, greedy and with beam search
(3 beams). EOS is a token the LM never emits (the kit's PAD), so every output runs the full 60 tokens. Each
configuration runs both ways on the same inputs; the outputs are checked token for token. Prints a table and
writes its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import record_results  # noqa: E402

SECTION = "KV-cached decoding with a pretrained LM — `make bench-decoding`"


def build_decoder(path: Path, layers: int, width: int) -> Any:
    """A random GPT-2 (``layers``, ``width``, GPT-2's vocabulary) saved to ``path`` and loaded as the kit loads
    an LM, frozen, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from multimodal_kit.models.pretrained_decoder import PretrainedTextDecoder

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=layers, n_embd=width, n_head=max(width // 64, 1))).save_pretrained(path)
    vocab = GPT2Config().vocab_size
    return PretrainedTextDecoder(str(path), source_dim=512, vocab_size=vocab + 1, pad_id=vocab).eval()


def generate(decoder: Any, features: torch.Tensor, beams: int, tokens: int, use_cache: bool) -> tuple[float, Any]:
    """Seconds to generate ``tokens`` for every row of ``features`` (B, N, D), and the search's result."""
    from multimodal_kit.models.search import beam_search, greedy_search

    def step(last: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict, None]:
        logits, state = decoder.step(last, state, use_cache=use_cache)
        return logits.float().log_softmax(-1), state, None

    options: dict[str, Any] = {"batch_size": len(features), "bos": 0, "eos": decoder.pad_id, "max_length": tokens}
    search = greedy_search if beams == 1 else beam_search
    if beams > 1:
        options["beam_size"] = beams
    start = time.perf_counter()
    with torch.no_grad():
        context = decoder.context(features, torch.ones(features.shape[:2], dtype=torch.bool))
        result = search(step, decoder.initial_state(context), **options)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per cell (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="a plumbing check: 2 layers of width 64, 8 tokens")
    args = parser.parse_args()
    layers, width, tokens = (2, 64, 8) if args.quick else (12, 768, args.tokens)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        decoder = build_decoder(Path(tmp) / "lm", layers, width)
        features = torch.randn(args.batch, 49, 512, generator=torch.Generator().manual_seed(0))
        generate(decoder, features[:2], 1, 2, True)  # warm-up: first calls allocate
        for beams in (1, 3):
            times: dict[bool, list[float]] = {True: [], False: []}
            outputs = {}
            for _ in range(args.repeats):
                for use_cache in (False, True):
                    seconds, outputs[use_cache] = generate(decoder, features, beams, tokens, use_cache)
                    times[use_cache].append(seconds)
            same = torch.equal(outputs[True].tokens, outputs[False].tokens)
            assert outputs[True].tokens.shape[1] == tokens, "every output should run the full length"
            name = "greedy" if beams == 1 else f"beam {beams}"
            rows[name] = {"uncached_s": statistics.median(times[False]), "cached_s": statistics.median(times[True]),
                          "identical": float(same)}
            rows[name]["speedup"] = rows[name]["uncached_s"] / rows[name]["cached_s"]
            print(name, rows[name], flush=True)
    shape = "GPT-2 small's shape, " if (layers, width) == (12, 768) else ""
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {torch.get_num_threads()} CPU threads ({platform.machine()}), "
             f"torch {torch.__version__}: a random LM of {layers} layers and width {width} ({shape}"
             f"the 50,257-token vocabulary), `prefix` connector, batch {args.batch}, {tokens} tokens generated per "
             "output (EOS never emitted). *uncached* runs the LM over the prefix and every token so far at each "
             "step, as decoding did before the cache; *cached* feeds one token per step and reads the rest from "
             f"the LM's key–value cache (reordered with the beams). Median of {args.repeats} run(s) each, both ways "
             "in one process.", "",
             "| search | uncached (s) | cached (s) | speed-up | tokens identical |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['uncached_s']:.1f} | {row['cached_s']:.1f} | {row['speedup']:.1f}× | "
                     f"{'yes' if row['identical'] else 'NO'} |")
    lines += ["", f"Command: `make bench-decoding` (`python benchmarks/lm_decoding.py --tokens {tokens} --batch "
              f"{args.batch} --repeats {args.repeats}`). Target: ≥ 3× for greedy and beam 3."]
    record_results(SECTION, lines, "lm_decoding", rows, print_only=args.quick)


if __name__ == "__main__":
    main()
