"""Pretrained encoders from ``transformers``, by hub name or local path, as drop-in source encoders.

Each takes what the kit's data modules give — normalized images (B, 3, S, S); raw waveforms (B, N) with their
lengths (``--data.init_args.inputs waveform``) — and applies the model's own preprocessing itself: the image
processor's resolution and mean/std, the feature extractor's normalization or log-mel front end. So naming the model
once in the YAML is enough. Frozen by default (``trainable: false``): the weights keep their values and the
backbone stays in eval mode (batch-norm statistics included); the method's ``encoder_lr`` sets a separate learning
rate when it trains. Code shipped with a hub model runs only with ``trust_remote_code``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from multimodal_kit.errors import ConfigError

#: checkpoints of two-tower models whose vision tower is loaded alone
VISION_TOWERS = {"clip": "CLIPVisionModel", "siglip": "SiglipVisionModel"}


def load_pretrained(name_or_path: str, trust_remote_code: bool, class_name: str | None = None) -> nn.Module:
    """``AutoModel.from_pretrained`` (or ``transformers.<class_name>``), with a clear error naming the flag."""
    import transformers

    try:
        cls = getattr(transformers, class_name) if class_name else transformers.AutoModel
        return cls.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(f"encoder {name_or_path!r} could not be loaded ({error}). Give a hub id or a directory "
                          "written by `save_pretrained`; a model that ships its own code also needs "
                          "trust_remote_code: true, if you trust it.") from error


class FrozenUnlessTrainable(nn.Module):
    """A wrapper's ``train()`` that keeps a frozen backbone in eval mode (dropout off, batch-norm statistics fixed)."""

    backbone: nn.Module
    trainable: bool

    def freeze_unless_trainable(self) -> None:
        self.backbone.requires_grad_(self.trainable)
        if not self.trainable:
            self.backbone.eval()

    def train(self, mode: bool = True) -> FrozenUnlessTrainable:
        super().train(mode)
        if not self.trainable:
            self.backbone.eval()
        return self


class PretrainedImageEncoder(FrozenUnlessTrainable):
    """A ``transformers`` vision model (ViT, ResNet, ConvNeXt, CLIP's or SigLIP's vision tower, …) as the image
    encoder: images (B, 3, S, S), normalized by the data module with ``input_mean``/``input_std`` → regions (B, N, D)
    (``output: regions``: patch tokens, or a CNN's last feature map as H·W regions) or one vector (B, D)
    (``output: pooled``).

    Args:
        name_or_path: hub id or local directory.
        output: ``regions`` (for attention) or ``pooled``.
        trainable: fine-tune the backbone (default: frozen).
        input_mean: the data module's normalization mean (``--data.init_args.mean``), undone before the model's own.
        input_std: the data module's normalization standard deviation.
        trust_remote_code: run Python code shipped with the model.
    """

    media = "image"

    def __init__(self, name_or_path: str, output: Literal["regions", "pooled"] = "regions", trainable: bool = False,
                 input_mean: Sequence[float] = (0.5, 0.5, 0.5), input_std: Sequence[float] = (0.5, 0.5, 0.5),
                 trust_remote_code: bool = False) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoImageProcessor

        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        self.backbone = load_pretrained(name_or_path, trust_remote_code, VISION_TOWERS.get(config.model_type))
        self.output, self.trainable = output, trainable
        vision = getattr(config, "vision_config", config)
        try:
            processor = AutoImageProcessor.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
            mean, std, size = processor.image_mean, processor.image_std, processor.size
            side = size.get("height") or size.get("shortest_edge") or vision.image_size
        except (OSError, ValueError, AttributeError):  # no preprocessor_config.json: ImageNet statistics
            mean, std, side = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), getattr(vision, "image_size", 224)
        self.side = int(side)
        self.register_buffer("to_unit_scale", torch.tensor([input_mean, input_std]).view(2, 1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("model_norm", torch.tensor([mean, std]).view(2, 1, 3, 1, 1), persistent=False)
        sizes = getattr(vision, "hidden_sizes", None)
        self.out_dim = int(sizes[-1] if sizes else vision.hidden_size)
        self.freeze_unless_trainable()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, S, S) → (B, N, D) regions, (B, C, H, W) feature map, or (B, D) pooled."""
        pixels = images * self.to_unit_scale[1] + self.to_unit_scale[0]  # (B, 3, S, S) in [0, 1]
        if pixels.shape[-1] != self.side or pixels.shape[-2] != self.side:
            pixels = F.interpolate(pixels, size=(self.side, self.side), mode="bilinear", align_corners=False,
                                   antialias=pixels.shape[-1] > self.side)
        pixels = (pixels - self.model_norm[0]) / self.model_norm[1]
        out = self.backbone(pixel_values=pixels)
        if self.output == "pooled":
            pooled = out.pooler_output
            return pooled.flatten(1)  # ResNet pools to (B, C, 1, 1)
        return out.last_hidden_state


class PretrainedAudioEncoder(FrozenUnlessTrainable):
    """A ``transformers`` speech encoder (wav2vec 2.0, HuBERT, WavLM, Whisper's encoder, …): raw waveforms (B, N) and
    their lengths (B,) → frames (B, T, D) and frame lengths (B,). Needs ``--data.init_args.inputs waveform`` at
    the model's sampling rate (16 kHz for all of these).

    Whisper's log-mel front end (its feature extractor, 30-second windows) runs inside; wav2vec-style models get
    each utterance normalized to zero mean and unit variance when their feature extractor asks for it.

    Args:
        name_or_path: hub id or local directory.
        trainable: fine-tune the backbone (default: frozen).
        trust_remote_code: run Python code shipped with the model.
    """

    media = "audio"
    inputs = "waveform"  # what the data module must give (``--data.init_args.inputs``)

    def __init__(self, name_or_path: str, trainable: bool = False, trust_remote_code: bool = False) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoFeatureExtractor

        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        self.whisper = config.model_type == "whisper"
        model = load_pretrained(name_or_path, trust_remote_code, "WhisperModel" if self.whisper else None)
        self.backbone = model.get_encoder() if self.whisper else model
        self.extractor = AutoFeatureExtractor.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        self.sampling_rate = int(self.extractor.sampling_rate)
        self.trainable = trainable
        self.out_dim = int(config.d_model if self.whisper else config.hidden_size)
        self.freeze_unless_trainable()

    def example_input(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One second of silence and its length: the inputs of a dry run."""
        return torch.zeros(1, self.sampling_rate), torch.tensor([self.sampling_rate])

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, N) waveforms, zero-padded; lengths (B,) samples → frames (B, T, D), lengths (B,)."""
        if self.whisper:
            return self._whisper(audio, lengths)
        valid = torch.arange(audio.shape[1], device=audio.device) < lengths.unsqueeze(1)  # (B, N)
        if getattr(self.extractor, "do_normalize", False):
            count = lengths.clamp(min=1).unsqueeze(1).to(audio.dtype)
            mean = (audio * valid).sum(1, keepdim=True) / count
            var = (((audio - mean) * valid) ** 2).sum(1, keepdim=True) / count
            audio = (audio - mean) / torch.sqrt(var + 1e-7) * valid
        kwargs: dict[str, Any] = {}
        if getattr(self.extractor, "return_attention_mask", False):
            kwargs["attention_mask"] = valid.long()
        frames = self.backbone(input_values=audio, **kwargs).last_hidden_state  # (B, T, D)
        from multimodal_kit.compat import feature_lengths  # here: importing a network never imports Lightning

        out_lengths = feature_lengths(self.backbone, lengths).clamp(max=frames.shape[1])
        return frames, out_lengths.long()

    def _whisper(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clips = [a[:n].float().cpu().numpy() for a, n in zip(audio, lengths.tolist(), strict=True)]
        features = self.extractor(clips, sampling_rate=self.sampling_rate, return_tensors="pt").input_features
        frames = self.backbone(input_features=features.to(audio.device, self.backbone.dtype)).last_hidden_state
        hop = self.extractor.hop_length
        out_lengths = ((lengths // hop + 1) // 2).clamp(min=1, max=frames.shape[1])  # the encoder halves the frames
        return frames[:, : int(out_lengths.max())], out_lengths.long()  # the 30-second window's padding cut
