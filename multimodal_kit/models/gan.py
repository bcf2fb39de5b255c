"""Networks of the conditional GAN: a text encoder for the condition, and a projection discriminator ``D(x, c)``
(the generator ``G(z, c)`` is in :mod:`~multimodal_kit.models.gan_generator`), for images (B, 3, S, S) and log-mel
spectrograms (B, n_mels, T) alike.

Both networks are DCGAN-style stacks; ``spatial_dims`` picks 2-D convolutions (images) or 1-D convolutions over
time with the mel bands as channels (audio). Each up/down block doubles/halves the resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import spectral_norm as apply_spectral_norm

from multimodal_kit.errors import ConfigError
from multimodal_kit.models.encoders import as_sequence, output_dim
from multimodal_kit.models.gan_generator import down_blocks, num_blocks
from multimodal_kit.models.masking import length_mask, masked_mean


class TextEncoder(nn.Module):
    """A sentence encoder trained from scratch: token embedding, a bidirectional GRU, the final states of both
    directions projected to the condition size.

    Args:
        vocab_size: token vocabulary.
        pad_id: the padding id.
        output_dim: the condition size D.
        embed_dim: token embedding size.
        hidden_dim: GRU size per direction.
    """

    def __init__(self, vocab_size: int, pad_id: int, output_dim: int = 128, embed_dim: int = 128,
                 hidden_dim: int = 128) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = nn.GRU(embed_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden_dim, output_dim)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, L), lengths (B,) → condition (B, D)."""
        x = self.embed(tokens)  # (B, L, E)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.rnn(packed)  # (2, B, H)
        return self.proj(torch.cat([last[0], last[1]], dim=-1))  # (B, D)


class PretrainedTextEncoder(nn.Module):
    """Any Hugging Face text model (hub name or local path), mean-pooled over the real tokens and projected to
    the condition size. The data must use the same tokenizer (``--data.tokenizer`` = the same name).

    Args:
        name_or_path: the model's hub name or directory.
        output_dim: the condition size D.
        vocab_size: the data's vocabulary, checked against the model's.
        trainable: fine-tune the model too (default: frozen, only the projection learns).
        trust_remote_code: run Python code shipped with the model (``auto_map``); off unless you trust its author.
    """

    def __init__(self, name_or_path: str, output_dim: int, vocab_size: int, trainable: bool = False,
                 trust_remote_code: bool = False) -> None:
        super().__init__()
        from transformers import AutoModel

        try:
            self.model = AutoModel.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as error:
            raise ConfigError(f"text encoder {name_or_path!r} could not be loaded ({error}). Give a hub id or a "
                              "directory written by `save_pretrained`; a model that ships its own code also needs "
                              "--model.init_args.trust_remote_code true, if you trust it.") from error
        model_vocab = self.model.get_input_embeddings().num_embeddings
        if vocab_size > model_vocab:
            raise ConfigError(f"text encoder {name_or_path!r} knows {model_vocab} tokens but the data's tokenizer has "
                             f"{vocab_size}: use the model's own tokenizer with --data.tokenizer {name_or_path}.")
        self.trainable = trainable
        self.model.requires_grad_(trainable)
        self.proj = nn.Linear(self.model.config.hidden_size, output_dim)

    def train(self, mode: bool = True) -> PretrainedTextEncoder:
        super().train(mode)
        if not self.trainable:
            self.model.eval()  # a frozen model keeps dropout off
        return self

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, L), lengths (B,) → condition (B, D)."""
        mask = length_mask(lengths.to(tokens.device), tokens.shape[1])  # (B, L)
        hidden = self.model(input_ids=tokens, attention_mask=mask.long()).last_hidden_state  # (B, L, H)
        return self.proj(masked_mean(hidden, mask))


def condition_encoder(name_or_path: str | None, output_dim: int, vocab_size: int, pad_id: int,
                      trainable: bool = False, trust_remote_code: bool = False) -> nn.Module:
    """The text encoder giving the condition (B, D): a Hugging Face model by hub name or path (see
    :class:`PretrainedTextEncoder`), or for ``None`` a :class:`TextEncoder` trained from scratch."""
    if name_or_path:
        return PretrainedTextEncoder(name_or_path, output_dim, vocab_size, trainable=trainable,
                                     trust_remote_code=trust_remote_code)
    return TextEncoder(vocab_size, pad_id, output_dim=output_dim)


class ProjectionScores(nn.Module):
    """What the kit's discriminators share: features φ(x) (B, F) from a subclass's :meth:`features`, scored
    against a condition as ``w·φ(x) + ⟨embed(c), φ(x)⟩`` (a projection discriminator, Miyato & Koyama 2018) by
    its ``score`` (F → 1) and ``embed`` (D → F) layers."""

    score: nn.Module
    embed: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, features: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """φ(x) (B, F), c (B, D) → scores (B,) (logits: high = real and matching)."""
        return self.score(features).squeeze(1) + (self.embed(c) * features).sum(1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, C, …), c (B, D) → scores (B,)."""
        return self.scores(self.features(x), c)


class ProjectionDiscriminator(ProjectionScores):
    """``D(x, c)``: strided-conv blocks (LeakyReLU) that each halve the resolution to a small map, flattened to
    features φ(x); the score is ``w·φ(x) + ⟨embed(c), φ(x)⟩`` (a projection discriminator, Miyato & Koyama
    2018), so the condition decides whether a sample *matches* its text. Trained matching-aware (real samples
    with the wrong text count as fake), see :mod:`multimodal_kit.models.gan_losses`.

    Args:
        in_channels: 3 for RGB images; n_mels for spectrograms.
        cond_dim: size of c.
        size: input side (images) or frames (audio).
        spatial_dims: 2 for images, 1 for audio.
        end: side/length of the last map.
        width: channels of the first block (each later block has twice as many).
        spectral_norm: spectral normalization of every layer (stabler training, the usual choice with hinge).
    """

    def __init__(self, in_channels: int, cond_dim: int, size: int, spatial_dims: int = 2, end: int = 4,
                 width: int = 32, spectral_norm: bool = True) -> None:
        super().__init__()
        sn = apply_spectral_norm if spectral_norm else (lambda module: module)
        self.blocks, channels = down_blocks(spatial_dims, in_channels, width,
                                            num_blocks(size, end, "the discriminator's input size"), wrap=sn)
        self.feature_dim = channels * end**spatial_dims
        self.score = sn(nn.Linear(self.feature_dim, 1))
        self.embed = sn(nn.Linear(cond_dim, self.feature_dim, bias=False))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, …) → φ(x) (B, F), which :meth:`scores` reads with any condition."""
        return self.blocks(x).flatten(1)


class FeatureDiscriminator(ProjectionScores):
    """A second ``D(x, c)`` on a frozen pretrained encoder's features (Projected GAN, Sauer et al. 2021;
    Vision-aided GAN, Kumari et al. 2022): the encoder already tells apart what a discriminator trained from
    scratch learns late or never (which *shape* an object of a few pixels has), so the generator gets that signal
    from the first step. Each region's feature goes through a small trainable layer, then the maximum over
    regions (is the thing anywhere in the image) is scored as in :class:`ProjectionDiscriminator`.

    Args:
        encoder: images (B, 3, S, S) → regions (B, N, D), e.g. a kit captioner's
            :class:`~multimodal_kit.models.transfer.EncoderFromCheckpoint` with ``trainable: false`` or a frozen
            :class:`~multimodal_kit.models.pretrained.PretrainedImageEncoder`. Gradients flow through it to the
            generator's images; its own weights stay as given.
        cond_dim: size of c.
        size: the image side.
        feature_dim: F, the trainable layer's size.
    """

    def __init__(self, encoder: nn.Module, cond_dim: int, size: int, feature_dim: int = 256) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder.requires_grad_(False)
        in_dim = output_dim(encoder.eval(), torch.zeros(1, 3, size, size))
        self.head = nn.Sequential(nn.Linear(in_dim, feature_dim), nn.LeakyReLU(0.2))
        self.feature_dim = feature_dim
        self.score = nn.Linear(feature_dim, 1)
        self.embed = nn.Linear(cond_dim, feature_dim, bias=False)

    def train(self, mode: bool = True) -> FeatureDiscriminator:
        super().train(mode)
        self.encoder.eval()  # frozen: batch-norm statistics and dropout as pretrained
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) → φ(x) (B, F): the trainable layer on each region, the maximum over regions."""
        regions = as_sequence(self.encoder(x))  # (B, N, D)
        return self.head(regions).amax(1)


def trainable_parameters(modules: Sequence[nn.Module]) -> list[nn.Parameter]:
    """The parameters of ``modules`` that require gradients (frozen pretrained parts are left out)."""
    return [p for module in modules for p in module.parameters() if p.requires_grad]


class EMAWithWarmup:
    """An ``avg_fn`` for ``AveragedModel``: an exponential moving average whose decay grows as
    ``min(decay, (1 + n) / (10 + n))`` with the update count n, so short runs are not dominated by the first
    weights (TensorFlow's ``ExponentialMovingAverage(num_updates=…)``). A class, so it pickles for ``ddp_spawn``."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        d = min(self.decay, (1 + float(num_averaged)) / (10 + float(num_averaged)))
        return averaged * d + current * (1 - d)


def matching_scores(discriminator: ProjectionScores, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor,
                    permutation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A discriminator's scores of a step's three pairs: real samples (B, …) with their texts c (B, D) and with
    the texts ``permutation`` (B,) gives them, and generated samples (B, …) with their texts. Returns φ(real)
    (computed once, scored with both texts) and the real, wrong and fake scores (B,) each."""
    real_features = discriminator.features(real)
    return (real_features, discriminator.scores(real_features, c), discriminator.scores(real_features, c[permutation]),
            discriminator(fake, c))
