"""One spec per medium, in one registry a user adds to from their own file.

A :class:`MediumSpec` says everything the kit does per medium outside its codec (the codec, a
:class:`~multimodal_kit.data.codec.MediaCodec`, is built by the medium's data module with its settings): how its
items are drawn (the presenter), the encoder a method builds when given none, a one-item input for dry runs of an
encoder, and what text generated from it is by default — ``caption`` (scored by BLEU, CIDEr and exact match) or
``transcript`` (WER, CER). The kit registers ``image`` and ``audio``; a new medium is one
``register_medium(MediumSpec(...))`` call beside its codec::

    register_medium(MediumSpec("vector", default_encoder=lambda **settings: nn.Linear(8, 32),
                               example_input=lambda **settings: (torch.zeros(1, 8),)))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.errors import ConfigError

#: what text generated from a medium is, which decides its metrics
TextKind = Literal["caption", "transcript"]


@dataclass(frozen=True)
class MediumSpec:
    """A medium's presenter, default encoder, example input and default text kind (see the module docstring).

    Attributes:
        name: the medium's name: its field's kind and default field name (``image``, ``audio``, …).
        presenter: ``presenter(codec)`` draws its items and makes W&B objects of them
            (:mod:`multimodal_kit.presenters`); ``None``: the media callbacks refuse the medium.
        default_encoder: ``default_encoder(**settings)`` → the encoder a method builds when given none (settings:
            ``image_size``, ``n_mels``, … as linked from the data); ``None``: a method needs ``encoder``.
        example_input: ``example_input(**settings)`` → the inputs of one encoder call on a one-item batch.
        text: what text generated from this medium is by default: ``caption`` or ``transcript``.
        gan_space: ``gan_space(**settings)`` → the module that maps the medium to and from a GAN's tensors
            (:mod:`multimodal_kit.models.gan_spaces`); ``None``: the GAN refuses the medium.
        codec: ``codec(**settings)`` → a codec of this medium, for a data module's further media field of it
            (``--data.media_fields {sound: {column: sound, medium: audio, n_mels: 40}}``); ``None``: not offered.
    """

    name: str
    presenter: Callable[[MediaCodec], Any] | None = None
    default_encoder: Callable[..., nn.Module] | None = None
    example_input: Callable[..., tuple[torch.Tensor, ...]] | None = None
    text: TextKind = "caption"
    codec: Callable[..., MediaCodec] | None = None
    gan_space: Callable[..., nn.Module] | None = None


_MEDIA: dict[str, MediumSpec] = {}


def register_medium(spec: MediumSpec) -> MediumSpec:
    """Add (or replace) the spec of medium ``spec.name``; returns it."""
    _MEDIA[spec.name] = spec
    return spec


def medium_spec(name: str) -> MediumSpec:
    """The spec of medium ``name``.

    Raises:
        ConfigError: for a medium no one registered, naming those that are.
    """
    if name not in _MEDIA:
        raise ConfigError(f"no medium {name!r} is registered (known: {', '.join(sorted(_MEDIA))}); register it "
                          "with multimodal_kit.media.register_medium(MediumSpec(...)) in the file of its codec.")
    return _MEDIA[name]


def presenter_for(codec: MediaCodec) -> Any:
    """The presenter of ``codec``'s medium."""
    presenter = medium_spec(codec.media).presenter
    if presenter is None:
        raise ConfigError(f"the medium {codec.media!r} has no presenter, so it cannot be drawn: drop the media "
                          "callbacks from trainer.callbacks, or register a presenter in its MediumSpec.")
    return presenter(codec)


def _register_builtin() -> None:
    from multimodal_kit.data.audio import LogMel
    from multimodal_kit.data.audio_codec import AudioCodec
    from multimodal_kit.data.image import ImageCodec
    from multimodal_kit.models.audio_encoders import ConvLSTMAudioEncoder
    from multimodal_kit.models.encoders import ConvImageEncoder
    from multimodal_kit.models.gan_spaces import AudioSpace, ImageSpace
    from multimodal_kit.presenters import AudioPresenter, ImagePresenter

    register_medium(MediumSpec(
        "image", presenter=ImagePresenter, default_encoder=lambda **settings: ConvImageEncoder(),
        example_input=lambda image_size=64, **settings: (torch.zeros(1, 3, image_size, image_size),),
        text="caption", codec=ImageCodec,
        gan_space=lambda image_size=64, **settings: ImageSpace(image_size)))
    register_medium(MediumSpec(
        "audio", presenter=AudioPresenter,
        default_encoder=lambda n_mels=64, **settings: ConvLSTMAudioEncoder(n_mels),
        example_input=lambda n_mels=64, **settings: (torch.zeros(1, 64, n_mels), torch.tensor([64])),
        text="transcript",
        codec=lambda inputs="log_mel", max_seconds=30.0, **log_mel: AudioCodec(LogMel(**log_mel), inputs, max_seconds),
        gan_space=lambda n_mels=64, max_frames=128, **settings: AudioSpace(n_mels, max_frames)))


_register_builtin()
