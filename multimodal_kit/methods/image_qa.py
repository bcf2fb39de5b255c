"""Moved to :mod:`multimodal_kit.tasks.image_qa`; this name stays so checkpoints and configs written before the
move (which name ``multimodal_kit.methods.image_qa.ImageQuestionAnswering``) load in Python too."""

from multimodal_kit.tasks.image_qa import ImageQuestionAnswering

__all__ = ["ImageQuestionAnswering"]
