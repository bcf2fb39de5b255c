"""What ``mmkit predict`` of a dual encoder writes: every input's embedding (``embeddings.npy``, one row per input,
with ``embeddings.jsonl`` naming each row's id and input) and, given text queries, the top-k media of the index
for each (``retrieval.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multimodal_kit.utils import rank_zero_info


def all_processes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every process's ``rows`` (each with an ``embedding``), in input order (the rows' ``input``, as the predict
    inputs were listed); one process: as they are."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, rows)
        rows = sorted((row for part in parts for row in part), key=lambda row: str(row["input"]))
    return rows


def write_embeddings(rows: list[dict[str, Any]], folder: Path) -> Path:
    """``embeddings.npy`` (N, P) float32 and ``embeddings.jsonl`` (``row``, ``id``, ``input`` per line)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "embeddings.npy", np.stack([row["embedding"] for row in rows]).astype(np.float32))
    with (folder / "embeddings.jsonl").open("w") as out:
        out.writelines(json.dumps({"row": i, "id": row["id"], "input": row["input"]}) + "\n"
                       for i, row in enumerate(rows))
    rank_zero_info(f"{len(rows)} embeddings written to {folder / 'embeddings.npy'} (rows named in embeddings.jsonl)")
    return folder / "embeddings.npy"


def write_retrieval(queries: list[str], query_embeddings: torch.Tensor, rows: list[dict[str, Any]], top_k: int,
                    folder: Path) -> Path:
    """For each query, the ``top_k`` rows of the index by cosine similarity → ``retrieval.jsonl`` (``query``,
    ``results``: ``id``, ``input``, ``score`` each, best first); the first queries' best ids in the log."""
    index = torch.from_numpy(np.stack([row["embedding"] for row in rows])).float()  # (N, P)
    scores = query_embeddings.float().cpu() @ index.T  # (Q, N)
    best = scores.topk(min(top_k, len(rows)), dim=1)
    path = folder / "retrieval.jsonl"
    lines = []
    for query, values, positions in zip(queries, best.values.tolist(), best.indices.tolist(), strict=True):
        results = [{"id": rows[p]["id"], "input": rows[p]["input"], "score": round(v, 4)}
                   for v, p in zip(values, positions, strict=True)]
        lines.append({"query": query, "results": results})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    shown = "\n".join(f"  {line['query']!r}: {', '.join(r['id'] for r in line['results'])}" for line in lines[:5])
    rank_zero_info(f"Top {top_k} of {len(rows)} media for {len(queries)} queries in {path}:\n{shown}")
    return path
