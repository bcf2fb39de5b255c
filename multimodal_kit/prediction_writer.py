"""``PredictionWriter``: what ``mmkit predict`` writes — one JSON line per input in
``<output_dir>/predictions.jsonl`` (each process writes its part, rank 0 joins them in input order), each generated
medium saved as a file under ``media/`` (its path under ``file``), and on request each word's attention over its
input as a picture under ``attention/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from multimodal_kit.callbacks import media_codec
from multimodal_kit.media import presenter_for
from multimodal_kit.utils import rank_zero_info


class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions.jsonl`` (one JSON object per input) into ``output_dir``; with ``attention_maps``,
    also ``attention/<id>.png`` (each word with its attention over the input) for methods that attend; for
    generators, each generated medium as ``media/<id>.png`` or ``.wav`` (its path under ``file`` in the JSON).

    Each process writes its own part; with several processes rank 0 joins them at the end, in input order.
    """

    def __init__(self, output_dir: str | Path, attention_maps: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.attention_maps = attention_maps

    def _attention_png(self, codec: Any, record: dict[str, Any]) -> str | None:
        words, weights = record.pop("_words", None), record.pop("_attention", None)
        if not self.attention_maps or weights is None or codec is None:
            return None
        media = codec.load_file(Path(record["input"]))
        path = self.output_dir / "attention" / f"{Path(str(record['id'])).stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        presenter_for(codec).attention_picture(media, words, weights).save(path)
        return str(path)

    def _media_file(self, codec: Any, record: dict[str, Any]) -> str | None:
        value = record.pop("_media", None)
        if value is None:
            return None
        folder = self.output_dir / "media"
        folder.mkdir(parents=True, exist_ok=True)
        return str(codec.save(value, folder / Path(str(record["id"])).stem))

    def _part(self, trainer: Trainer) -> Path:
        name = "predictions.jsonl" if trainer.world_size == 1 else f"predictions.rank{trainer.global_rank}.jsonl"
        return self.output_dir / name

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._part(trainer).write_text("")

    def write_on_batch_end(self, trainer: Trainer, pl_module: LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        indices = batch_indices if trainer.world_size > 1 and batch_indices else [None] * len(prediction)
        with self._part(trainer).open("a") as f:
            for record, index in zip(prediction, indices, strict=True):
                if index is not None:
                    record["_index"] = int(index)  # the input position, to put the parts back in order
                png = self._attention_png(media_codec(trainer), record)
                if png is not None:
                    record["attention_map"] = png
                media = self._media_file(media_codec(trainer), record)
                if media is not None:
                    record["file"] = media
                f.write(json.dumps(record) + "\n")

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.world_size > 1:
            trainer.strategy.barrier()
            if trainer.is_global_zero:
                parts = sorted(self.output_dir.glob("predictions.rank*.jsonl"))
                records = [json.loads(line) for part in parts for line in part.read_text().splitlines() if line]
                records.sort(key=lambda record: record.pop("_index"))
                with (self.output_dir / "predictions.jsonl").open("w") as out:
                    out.writelines(json.dumps(record) + "\n" for record in records)
                for part in parts:
                    part.unlink()
        rank_zero_info(f"Predictions written to {self.output_dir / 'predictions.jsonl'}")
