"""Speech synthesis, text → speech, by the two sequence methods: Tacotron-style cross-modal attention
(:class:`AttentionSpeechSynthesis`) and Seq2Seq (:class:`Seq2SeqSpeechSynthesis`), the same decoder given one
summary of the text instead — the comparison that shows what attention buys on longer phrases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from torch import nn

from multimodal_kit.methods.frame_generation import FrameGenerationMethod
from multimodal_kit.models.attention import build_attention


class AttentionSpeechSynthesis(FrameGenerationMethod):
    """Tacotron 2 in small: the decoder attends over the characters' states at every step.

    Args:
        attention: ``location`` (location-sensitive: sees its previous and cumulative weights, Tacotron 2's),
            ``additive``, ``dot``, ``general``, or a class path of your own attention module
            (:mod:`multimodal_kit.models.attention`).
        attention_dim: the hidden size of additive and location-sensitive attention's scoring MLP.
        **kwargs: the options of :class:`~multimodal_kit.methods.frame_generation.FrameGenerationMethod`.
    """

    def __init__(self, attention: Literal["location", "additive", "dot", "general"] | Callable[[int, int], nn.Module]
                 = "location", attention_dim: int = 128, **kwargs: Any) -> None:
        self.give(attention=attention)
        super().__init__(**kwargs)

    def configure_attention(self, query_dim: int, key_dim: int) -> nn.Module:
        return build_attention(self.given_objects["attention"], query_dim, key_dim, self.hparams.attention_dim)


class Seq2SeqSpeechSynthesis(FrameGenerationMethod):
    """The text squeezed into one summary (the mean of its states), which starts the decoder and is read at
    every step (Cho et al. 2014); no attention.

    Args:
        **kwargs: the options of :class:`~multimodal_kit.methods.frame_generation.FrameGenerationMethod`.
    """

    def configure_attention(self, query_dim: int, key_dim: int) -> None:
        return None
