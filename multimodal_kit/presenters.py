"""How each medium is shown: a picture of an item, its attention picture, and W&B objects (images, playable
audio). The callbacks and the prediction writer use these; the data layer never draws or imports W&B.

A presenter wraps a medium's codec; :func:`~multimodal_kit.media.presenter_for` picks it by the codec's
medium, from the medium's :class:`~multimodal_kit.media.MediumSpec`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.datasets import PairDataset
from multimodal_kit.visualize import attention_heatmap, attention_strip, spectrogram_image, tensor_to_pil


class ImagePresenter:
    """Images as they are; attention as heat over the image's regions, one cell per word."""

    def __init__(self, codec: MediaCodec) -> None:
        self.codec = codec

    def picture(self, item: torch.Tensor) -> Image.Image:
        """uint8 (3, S, S) → the image."""
        return tensor_to_pil(item)

    def attention_picture(self, item: torch.Tensor, words: Sequence[str], weights: torch.Tensor,
                          caption: str = "") -> Image.Image:
        """The image (``caption`` under it: what else the model read, a question), then each word with its
        attention (L, regions) as a heat overlay."""
        return attention_strip(self.picture(item), words, weights, caption=caption)

    def wandb_value(self, value: Any, caption: str | None = None) -> Any:
        """A value of :meth:`MediaCodec.to_values` as a ``wandb.Image``."""
        import wandb

        return wandb.Image(value, caption=caption)

    def wandb_item(self, dataset: PairDataset, index: int, caption: str | None = None) -> Any:
        """Item ``index`` of ``dataset`` as a ``wandb.Image``."""
        return self.wandb_value(self.picture(dataset.media_at(index)), caption)


class AudioPresenter(ImagePresenter):
    """Audio as its spectrogram; attention as a tokens × frames heatmap under it; W&B objects are playable."""

    def picture(self, item: torch.Tensor) -> Image.Image:
        """log-mel (T, n_mels) or a waveform (N,) → its spectrogram."""
        return spectrogram_image(self.codec.as_log_mel(item))

    def attention_picture(self, item: torch.Tensor, words: Sequence[str], weights: torch.Tensor,
                          caption: str = "") -> Image.Image:
        """The spectrogram with a tokens × frames heatmap under it; trailing padded frames (zero weight) cut;
        ``caption`` (what else the model read) labels the spectrogram's row."""
        valid = torch.nonzero(weights.sum(0) > 0)
        frames = int(valid.max()) + 1 if len(valid) else weights.shape[1]
        return attention_heatmap(self.codec.as_log_mel(item), words, weights[:, :frames], title=caption)

    def wandb_value(self, value: Any, caption: str | None = None) -> Any:
        """``{array, sampling_rate}`` → a playable ``wandb.Audio``."""
        import wandb

        return wandb.Audio(np.asarray(value["array"]), sample_rate=value["sampling_rate"], caption=caption)

    def wandb_item(self, dataset: PairDataset, index: int, caption: str | None = None) -> Any:
        """Item ``index`` of ``dataset`` as a playable ``wandb.Audio`` of its original waveform."""
        wave = self.codec.waveform(dataset.value_at(index), dataset.rows.ids[index])
        return self.wandb_value({"array": wave.numpy(), "sampling_rate": self.codec.sample_rate}, caption)
