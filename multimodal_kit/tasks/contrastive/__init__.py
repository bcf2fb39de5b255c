"""Contrastive dual encoders (CLIP for image–text, CLAP for audio–text): one package, named by import path in
``experiments/contrastive_*.yaml``; see docs/methods/contrastive.md."""

from multimodal_kit.tasks.contrastive.method import ContrastiveDualEncoder

__all__ = ["ContrastiveDualEncoder"]
