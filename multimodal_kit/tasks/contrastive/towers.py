"""The dual encoder's towers: a pooling of either encoder's sequence into one vector, and pretrained text and CLAP
audio encoders from ``transformers`` by hub name or local path (CLIP's and CLAP's vision and speech encoders as
media encoders come from :mod:`multimodal_kit.models.pretrained` and :class:`ClapAudioEncoder`)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from multimodal_kit.errors import ConfigError
from multimodal_kit.models.masking import masked_mean
from multimodal_kit.models.pretrained import FrozenUnlessTrainable, load_pretrained

#: the text tower of two-tower checkpoints, loaded alone (the rest of AutoModel's choice)
TEXT_TOWERS = {"clip": "CLIPTextModel", "siglip": "SiglipTextModel"}


def clap_tower(name_or_path: str, tower: Literal["audio_model", "text_model"]) -> nn.Module:
    """One tower of a CLAP checkpoint: ``ClapAudioModel``/``ClapTextModel.from_pretrained`` would not find their
    weights under the two-tower checkpoint's prefixes and start from random ones, so the whole model is loaded and
    the tower taken from it."""
    model = load_pretrained(name_or_path, False, "ClapModel")
    return getattr(model, tower)


class Pooling(nn.Module):
    """A sequence and its validity mask → one vector: ``mean`` of the valid positions, or ``attention``: one
    learned query attends over them (CLIP's attention pooling), with a learned embedding of each position added
    first when ``positions`` is given (image regions: where a thing is matters for "left of").

    Args:
        dim: D, the features' size.
        mode: ``mean`` or ``attention``.
        heads: attention heads (``attention``; must divide ``dim``).
        positions: N, the fixed number of positions to embed (``None``: none, e.g. audio frames of any length).
    """

    def __init__(self, dim: int, mode: Literal["mean", "attention"] = "attention", heads: int = 4,
                 positions: int | None = None) -> None:
        super().__init__()
        if mode not in ("mean", "attention"):
            raise ConfigError(f"pooling must be mean or attention, got {mode!r}")
        self.mode = mode
        self.positions = nn.Parameter(torch.randn(1, positions, dim) * 0.02) if positions else None
        if mode == "attention":
            if dim % heads:
                raise ConfigError(f"pool_heads={heads} must divide the features' size {dim}")
            self.query = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
            self.attend = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, sequence: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """sequence (B, N, D), mask (B, N) bool (True: valid) → (B, D)."""
        if self.positions is not None and sequence.shape[1] == self.positions.shape[1]:
            sequence = sequence + self.positions.to(sequence.dtype)
        if self.mode == "mean":
            return masked_mean(sequence, mask)
        query = self.query.to(sequence.dtype).expand(len(sequence), -1, -1)
        pooled, _ = self.attend(query, sequence, sequence, key_padding_mask=~mask, need_weights=False)
        return pooled.squeeze(1) + masked_mean(sequence, mask)  # the mean as a residual: a stable start


class PretrainedTextEncoder(FrozenUnlessTrainable):
    """A ``transformers`` text model (CLIP's or CLAP's text tower, BERT, …) as the text tower: the kit's text
    batch (``text_tokens`` ``BOS … EOS`` from the same model's tokenizer, ``--data.init_args.tokenizer <the same
    name>``) → one vector per text (B, D): the model's pooled output (CLIP: the end token's state; BERT: its
    pooler), else the mean of its states.

    Args:
        name_or_path: hub id or local directory.
        trainable: fine-tune it (default: frozen).
        trust_remote_code: run Python code shipped with the model.
    """

    media = "text"

    def __init__(self, name_or_path: str, trainable: bool = False, trust_remote_code: bool = False) -> None:
        super().__init__()
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        self.backbone = clap_tower(name_or_path, "text_model") if config.model_type == "clap" else \
            load_pretrained(name_or_path, trust_remote_code, TEXT_TOWERS.get(config.model_type))
        text = getattr(config, "text_config", config)
        self.vocab_size, self.out_dim = int(text.vocab_size), int(text.hidden_size)
        self.trainable = trainable
        self.freeze_unless_trainable()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, L), lengths (B,) → (B, D)."""
        mask = torch.arange(tokens.shape[1], device=tokens.device)[None] < lengths.to(tokens.device)[:, None]
        out: Any = self.backbone(input_ids=tokens, attention_mask=mask.long())
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else masked_mean(out.last_hidden_state, mask)


class ClapAudioEncoder(FrozenUnlessTrainable):
    """CLAP's audio tower (``ClapAudioModel`` of a CLAP checkpoint) as the audio encoder: waveforms (B, N) and
    their lengths → one vector per clip (B, D), through CLAP's own feature extractor (its log-mel front end at its
    sampling rate, 48 kHz for the published models: ``--data.init_args.inputs waveform --data.init_args.sample_rate
    48000``).

    Args:
        name_or_path: hub id or local directory of a CLAP checkpoint.
        trainable: fine-tune it (default: frozen).
    """

    media = "audio"
    inputs = "waveform"

    def __init__(self, name_or_path: str, trainable: bool = False) -> None:
        super().__init__()
        from transformers import AutoFeatureExtractor

        self.backbone = clap_tower(name_or_path, "audio_model")
        self.extractor = AutoFeatureExtractor.from_pretrained(name_or_path)
        self.sampling_rate = int(self.extractor.sampling_rate)
        self.out_dim = int(self.backbone.audio_encoder.num_features)  # the Swin's last stage: 2^(stages-1) × width
        self.trainable = trainable
        self.freeze_unless_trainable()

    def example_input(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One second of silence and its length: the inputs of a dry run."""
        return torch.zeros(1, self.sampling_rate), torch.tensor([self.sampling_rate])

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, N), lengths (B,) samples → (B, 1, D) and lengths of ones (one vector per clip)."""
        clips = [a[:n].float().cpu().numpy() for a, n in zip(audio, lengths.tolist(), strict=True)]
        inputs = self.extractor(clips, sampling_rate=self.sampling_rate, return_tensors="pt")
        kwargs = {"is_longer": inputs["is_longer"].to(audio.device)} if "is_longer" in inputs else {}
        out = self.backbone(input_features=inputs["input_features"].to(audio.device, self.backbone.dtype), **kwargs)
        return out.pooler_output.unsqueeze(1), torch.ones(len(audio), dtype=torch.long, device=audio.device)
