"""Features of a frozen encoder, computed once per split and read back instead of the media.

A frozen pretrained encoder (ViT, CLIP's vision tower, wav2vec 2.0 …) gives the same output for an item every
epoch, so recomputing it is wasted work (ClipCap and BLIP-2-style training cache the frozen tower's outputs). The
features of a split are written with ``datasets.Dataset.map`` into an Arrow file under the kit's cache, named by a
key that covers everything they depend on: the encoder (its name and revision, and a hash of its weights), the data
module's preprocessing, the split's own fingerprint, and the precision they were computed in. Under DDP each process
computes a contiguous shard of the split on its own device; every process then reads all shards.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from multimodal_kit.compat import dataset_fingerprint, model_revision
from multimodal_kit.utils import kit_cache

if TYPE_CHECKING:
    from multimodal_kit.data.base import PairDataModule

#: encode(batch of media) → features (B, N, D) and their validity mask (B, N)
Encode = Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]

FEATURES = "features"


def features_key(media: str) -> str:
    """The batch key of cached features (B, N, D): ``image_features``, ``audio_features``."""
    return f"{media}_features"


def feature_lengths_key(media: str) -> str:
    """The batch key of the cached features' lengths (B,)."""
    return f"{media}_feature_lengths"


def encoder_key(encoder: nn.Module) -> str:
    """A file-name-safe key of an encoder's identity: ``<name>-<hash>``, the name from its pretrained
    ``name_or_path`` (else its class), the hash over its revision, its settings and its weights' bytes."""
    config = getattr(getattr(encoder, "backbone", None), "config", None)
    name = str(getattr(config, "name_or_path", "") or type(encoder).__name__)
    digest = hashlib.sha256()
    digest.update(f"{type(encoder).__qualname__}|{model_revision(config)}|"
                  f"{getattr(encoder, 'output', None)}".encode())
    tensors = {**encoder.state_dict(), **dict(encoder.named_buffers())}  # non-persistent buffers (normalization) too
    for key, tensor in sorted(tensors.items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name if Path(name).is_dir() else name)
    return f"{safe}-{digest.hexdigest()[:16]}"


def split_key(media: datasets.Dataset, ids: Sequence[str], preprocessing: dict[str, Any], precision: str) -> str:
    """The key of one split's features for a given encoder: the split's Arrow fingerprint and item ids, the data
    module's preprocessing settings and the precision the features are computed in."""
    digest = hashlib.sha256()
    digest.update(dataset_fingerprint(media).encode())
    digest.update("\n".join(ids).encode())
    digest.update(json.dumps(preprocessing, sort_keys=True, default=str).encode())
    digest.update(precision.encode())
    return digest.hexdigest()[:16]


def compute_features(media: datasets.Dataset, decode: Callable[[Any, int], torch.Tensor],
                     collate: Callable[[list[torch.Tensor]], dict[str, torch.Tensor]], encode: Encode, dim: int,
                     device: torch.device, batch_size: int, path: Path, description: str) -> datasets.Dataset:
    """One split's (or shard's) features into the Arrow file ``path`` (read back if it already exists).

    Args:
        media: the split's media column, undecoded.
        decode: (value, index) → the item's media tensor, as the data module decodes it.
        collate: the data module's media collation (tensors → the batch entries the encoder reads).
        encode: the method's own encoding of such a batch, so cached features equal what training would compute.
        dim: D, the features' size.
        device: where the encoder runs.
        batch_size: items per encoder call.
        path: the Arrow file.
        description: the progress bar's label.

    Returns:
        A dataset with one column, ``features``: per item an array (N_i, D) of float32, only its valid positions.
    """
    column = media.column_names[0]

    def batch_features(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[np.ndarray]]:
        tensors = collate([decode(value, index) for value, index in zip(batch[column], indices, strict=True)])
        with torch.no_grad():
            features, mask = encode({k: v.to(device) for k, v in tensors.items()})
        features, mask = features.float().cpu(), mask.cpu()
        return {FEATURES: [f[m].numpy() for f, m in zip(features, mask, strict=True)]}

    path.parent.mkdir(parents=True, exist_ok=True)
    schema = datasets.Features({FEATURES: datasets.Array2D(shape=(None, dim), dtype="float32")})
    return media.map(batch_features, batched=True, batch_size=batch_size, with_indices=True, features=schema,
                     remove_columns=media.column_names, cache_file_name=str(path), load_from_cache_file=True,
                     new_fingerprint=path.stem, desc=description)


def shard_bounds(length: int, shards: int, index: int) -> tuple[int, int]:
    """[start, stop) of contiguous shard ``index`` of ``shards`` over ``length`` items, as ``Dataset.shard``
    cuts them (the first ``length % shards`` shards one item longer)."""
    size, extra = divmod(length, shards)
    start = index * size + min(index, extra)
    return start, start + size + (index < extra)


class CachedFeatures:
    """Random access to a split's cached features as tensors (N_i, D)."""

    def __init__(self, table: datasets.Dataset) -> None:
        self.table = table.with_format("numpy")

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.table[index][FEATURES])  # float32 (N_i, D): the Array2D column's rows


def pad_features(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached features (N_i, D) → zero-padded (B, max N_i, D) and the lengths (B,)."""
    return pad_sequence(items, batch_first=True), torch.tensor([len(item) for item in items])


def preprocessing(hparams: dict[str, Any]) -> dict[str, Any]:
    """The data settings that shape what an encoder reads (all but batching, loading and text settings, and the
    CLI's own ``_class_path``-like entries): part of a feature cache's and a media check's key."""
    loader = {"batch_size", "eval_batch_size", "num_workers", "preload", "predict_path", "cache_dir",
              "check_media", "bad_rows", "train_text", "tokenizer", "tokenizer_kind", "min_word_count",
              "max_text_length", "trust_remote_code", "cache_features", "label_classes", "check_workers"}
    return {key: value for key, value in hparams.items() if key not in loader and not key.startswith("_")}


def use_cached_features(datamodule: PairDataModule, name: str, encoder: nn.Module, encode: Encode, dim: int,
                        precision: str, world: tuple[int, int] = (1, 0),
                        barrier: Callable[[], None] = lambda: None) -> Path:
    """Compute split ``name``'s features with a frozen ``encoder`` once (this process: its shard of ``world`` =
    (processes, rank)), then let the split's items carry them (training: instead of their media).

    Args:
        datamodule: the kit's data module holding the split.
        encode: the method's encoding of a batch of media → features (B, N, D) and mask (B, N).
        dim: D.
        precision: the trainer's precision, in which ``encode`` runs (part of the key).
        barrier: waits for every process (the strategy's), between computing the shards and reading them.

    Returns:
        The directory of the split's cached features.
    """
    datamodule.check_split(name)
    dataset, codec = datamodule.dataset(name), datamodule.codec
    key = split_key(dataset.media, dataset.ids, preprocessing(datamodule.hparams), precision)
    folder = kit_cache("features", datamodule.hparams.cache_dir) / encoder_key(encoder) / f"{name}-{key}"
    processes, rank = world
    start, stop = shard_bounds(len(dataset), processes, rank)
    device = next(encoder.parameters()).device
    shards = range(min(processes, len(dataset)))  # fewer items than processes: the last shards are empty
    if rank in shards:
        compute_features(dataset.media.select_columns([codec.media_column]).select(range(start, stop)),
                         lambda value, i: codec.load(value, dataset.ids[start + i]), codec.collate, encode, dim,
                         device, datamodule.eval_batch_size, folder / f"shard{rank:03d}of{processes:03d}.arrow",
                         f"caching {name} features")
    barrier()
    table = datasets.concatenate_datasets([datasets.Dataset.from_file(str(folder / f"shard{r:03d}of"
                                                                          f"{processes:03d}.arrow"))
                                           for r in shards])
    dataset.use_features(CachedFeatures(table), keep_media=name != "train")  # evaluation draws its media
    return folder
