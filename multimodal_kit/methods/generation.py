"""The two generation protocols, whatever the direction: a method that writes text (captioners, recognizers, image
question answering) and one that makes media (the GAN, both synthesizers). Callbacks that draw what a method
generates declare the protocol they need (:attr:`needs`), and it is checked at setup (:func:`check_protocol`), so a
callback that does not fit the method is a :class:`~multimodal_kit.errors.ConfigError` before the first step,
not a crash at the first validation."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from multimodal_kit.errors import ConfigError
from multimodal_kit.models.search import SearchResult

#: the kinds of field that are not media
NOT_MEDIA = ("text", "label", "references", "id")


@runtime_checkable
class GeneratesText(Protocol):
    """A method whose outputs include a text field: ``generate(batch)`` decodes freely (greedy or beam) into a
    :class:`~multimodal_kit.models.search.SearchResult`: tokens (B, T), lengths (B,), scores (B,) and, with
    attention, the weights (B, T, N) over the input's N regions or frames."""

    def generate(self, batch: dict[str, Any]) -> SearchResult: ...


@runtime_checkable
class GeneratesMedia(Protocol):
    """A method whose outputs include a media field: ``noise(n, generator, inference)`` draws what
    ``generate(batch, noise)`` reads besides the batch's fields (``None`` for a method without noise), and
    ``generate`` returns the media entries of a batch (``image`` (B, 3, H, W); ``audio`` (B, T, n_mels) raw
    log-mel with ``audio_lengths`` (B,)), which the data's codec turns into images or sound."""

    def noise(self, n: int, generator: torch.Generator | None = None, inference: bool = False
              ) -> torch.Tensor | None: ...

    def generate(self, batch: dict[str, Any], noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]: ...


def output_kinds(method: Any) -> set[str]:
    """The kinds of the fields ``method`` declares as outputs (none for a module without the declaration)."""
    declared = getattr(method, "declared_fields", None)
    return set(declared()[1].values()) if callable(declared) else set()


def follows(method: Any, protocol: type) -> bool:
    """Whether ``method`` follows ``protocol``: it has the protocol's methods (or is of that class) and declares an
    output of its kind (text for :class:`GeneratesText`, a medium for any other)."""
    kinds = output_kinds(method)
    produces = "text" in kinds if protocol is GeneratesText else bool(kinds - set(NOT_MEDIA))
    return isinstance(method, protocol) and produces


def check_protocol(callback: Any, method: Any) -> None:
    """Refuse a callback whose :attr:`needs` protocol ``method`` does not follow, naming both and the fix."""
    protocol = getattr(callback, "needs", None)
    if protocol is None or follows(method, protocol):
        return
    what = {GeneratesText: "writes text (GeneratesText)", GeneratesMedia: "makes media (GeneratesMedia)"}.get(
        protocol, f"is a {protocol.__name__}")
    raise ConfigError(f"the callback {type(callback).__name__} draws what a method that {what} generates, and "
                      f"{type(method).__name__} does not (its outputs: {sorted(output_kinds(method)) or 'none'}): "
                      f"drop it from trainer.callbacks in the experiment file.")
