"""Image–text matching with hard negatives (one attribute of the caption swapped): one package, named by import
path in ``experiments/matching_image_caption.yaml``; see docs/methods/matching.md."""

from multimodal_kit.tasks.matching.method import ImageTextMatching

__all__ = ["ImageTextMatching"]
