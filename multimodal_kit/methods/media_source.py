"""``MediaSource``: what a method that reads the pair's medium shares — building its encoder (the kit's default
or any module given, checked by a dry run), encoding a batch's media into a feature sequence with its validity
mask, and checking the data gives what the encoder reads. Media → text methods and image question answering use
it alike. A frozen pretrained encoder's features are computed once per split and read back (the data module's
``cache_features``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from multimodal_kit.data.feature_cache import feature_lengths_key, features_key, use_cached_features
from multimodal_kit.errors import ConfigError
from multimodal_kit.models.encoders import (
    as_sequence,
    default_encoder,
    example_input,
    output_dim,
    output_shape,
)
from multimodal_kit.models.masking import length_mask
from multimodal_kit.models.pretrained import FrozenUnlessTrainable
from multimodal_kit.utils import rank_zero_info


class MediaSource:
    """A mixin for a ``LightningModule`` with ``hparams.media``, ``image_size``, ``n_mels`` and an ``encoder``
    given to :meth:`~multimodal_kit.methods.base.MultimodalMethod.give` (or ``None`` for the default)."""

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if getattr(self, "encoder", None) is None:  # a method that chose not to read the medium
            return
        wants = getattr(self.encoder, "inputs", "log_mel")
        gives = getattr(datamodule, "inputs", wants)  # audio data says what it gives; images have one form
        if gives != wants:
            raise ConfigError(f"{type(self.encoder).__name__} reads audio as {wants}, but the data module gives "
                              f"{gives}: set --data.init_args.inputs {wants}.")
        rate = getattr(self.encoder, "sampling_rate", None)
        if rate and getattr(datamodule, "sample_rate", rate) != rate:
            raise ConfigError(f"{type(self.encoder).__name__} was trained on {rate} Hz audio: set "
                              f"--data.init_args.sample_rate {rate}.")
        # before any loader exists (workers would copy the datasets without their features)
        splits = {"fit": ("train", "validation") if self.trainer.limit_val_batches != 0 else ("train",),
                  "validate": ("validation",), "test": ("test",)}.get(stage, ())
        self.cache_encoder_features(splits)

    # ------------------------------------------------------------------ a frozen encoder's features, once
    def cache_encoder_features(self, splits: tuple[str, ...]) -> None:
        """With a frozen pretrained encoder and the data module's ``cache_features`` on, compute ``splits``'
        encoder outputs once (each process its shard, on its device) and read them from then on; a trainable
        encoder or augmented media keep encoding every step, said once. Called from ``setup``: fit caches the
        training and validation splits, validate and test theirs."""
        datamodule = getattr(self.trainer, "datamodule", None)
        encoder = getattr(self, "encoder", None)
        if (not isinstance(encoder, FrozenUnlessTrainable) or datamodule is None
                or not datamodule.hparams.get("cache_features") or self.trainer.fast_dev_run):
            return  # (a fast_dev_run's few batches would not pay for encoding every split once)
        name = getattr(getattr(encoder.backbone, "config", None), "name_or_path", type(encoder).__name__)
        if encoder.trainable or datamodule.augments_media:
            why = "it trains (trainable: true)" if encoder.trainable else "the training media are augmented"
            rank_zero_info(f"Feature cache off for {name}: {why}, so it encodes every step.")
            return
        trainer = self.trainer
        home = next(encoder.parameters()).device
        encoder.to(trainer.strategy.root_device)  # setup runs before Lightning moves the model: encode on the device
        try:
            for split in splits:
                if split not in datamodule.splits:
                    continue
                folder = use_cached_features(datamodule, split, encoder, self._encode_media, int(encoder.out_dim),
                                                        str(trainer.precision),
                                                        (trainer.world_size, trainer.global_rank),
                                                        trainer.strategy.barrier)
                rank_zero_info(f"The frozen {name}'s {split} features: {folder} (computed once; read back from "
                               "then on)")
        finally:
            encoder.to(home)

    def _encode_media(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's features of a batch of media, as a training step would compute them (the precision
        plugin's input conversion and autocast)."""
        plugin = self.trainer.precision_plugin
        with plugin.forward_context():
            return self.encode_source(plugin.convert_input(batch))

    def build_encoder(self) -> tuple[nn.Module, int]:
        """The source encoder and its feature size D."""
        hp = self.hparams
        encoder = self.given_objects.get("encoder") or default_encoder(hp.media, **self.medium_settings())
        reads = getattr(encoder, "media", hp.media)  # the kit's encoders say which medium they read
        try:
            if reads != hp.media:
                raise ValueError(f"it reads {reads}")
            return encoder, output_dim(encoder, *self.example_source(encoder))
        except (RuntimeError, TypeError, ValueError) as error:
            example = ", ".join(str(tuple(x.shape)) for x in self.example_source(encoder))
            raise ConfigError(
                f"--model.init_args.encoder {type(encoder).__name__} cannot read this data's {hp.media} input "
                f"(shapes {example}): {error}. The data module gives {hp.media}; use an {hp.media} encoder "
                f"(default: {type(default_encoder(hp.media, **self.medium_settings())).__name__})."
            ) from error

    def example_source(self, encoder: nn.Module | None = None) -> tuple[torch.Tensor, ...]:
        """The inputs of one encoder call on a one-item batch, for dry runs (the encoder's own
        ``example_input()`` where it has one, e.g. waveforms for a pretrained speech encoder)."""
        encoder = encoder if encoder is not None else getattr(self, "encoder", None)
        if hasattr(encoder, "example_input"):
            return tuple(encoder.example_input())
        return example_input(self.hparams.media, **self.medium_settings())

    def medium_settings(self) -> dict[str, Any]:
        """The data's settings of the medium that the method declares (``image_size``, ``n_mels``): what its
        spec's default encoder and example input are built with."""
        return {key: self.hparams[key] for key in ("image_size", "n_mels") if key in self.hparams}

    def source_regions(self) -> int:
        """N, the regions (or frames) the encoder gives for one example source: what a module sized by the
        source's positions (a flattened summary, region embeddings) is built for."""
        return output_shape(self.encoder, *self.example_source())[0]

    def encode_source(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's source → encoder features (B, N, D) and their validity mask (B, N) (audio: frames past
        each item's length are padding); cached features (``<media>_features``) are read as they are."""
        cached = batch.get(features_key(self.hparams.media))
        if cached is not None:
            lengths = batch[feature_lengths_key(self.hparams.media)].to(cached.device)
            return cached, length_mask(lengths, cached.shape[1])
        source = batch[self.hparams.media]
        lengths = batch.get(f"{self.hparams.media}_lengths")
        if lengths is None:
            features = as_sequence(self.encoder(source))
            return features, torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        output = self.encoder(source, lengths)
        if not (isinstance(output, tuple) and len(output) == 2):
            raise TypeError(f"an {self.hparams.media} encoder must return (features (B, N, D), lengths (B,)); "
                            f"{type(self.encoder).__name__} returned {type(output).__name__}")
        features, lengths = output
        return features, length_mask(lengths.to(features.device), features.shape[1])

