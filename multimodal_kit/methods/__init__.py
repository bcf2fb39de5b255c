"""LightningModules: one per method. Importing this package lets the CLI name them by short class name."""

from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.cross_attention import CrossModalAttention
from multimodal_kit.methods.gan import ConditionalGAN
from multimodal_kit.methods.pretrained_lm import PretrainedLM
from multimodal_kit.methods.seq2seq import Seq2Seq
from multimodal_kit.methods.text_generation import TextGenerationMethod

__all__ = ["ConditionalGAN", "CrossModalAttention", "MultimodalMethod", "PretrainedLM", "Seq2Seq",
           "TextGenerationMethod"]
