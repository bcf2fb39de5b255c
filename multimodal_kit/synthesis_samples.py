"""Moved to :mod:`multimodal_kit.tasks.speech_synthesis.samples`; this name stays so experiment files written
before the move (``multimodal_kit.synthesis_samples.SynthesisSamples``) still run."""

from multimodal_kit.tasks.speech_synthesis.samples import SynthesisSamples

__all__ = ["SynthesisSamples"]
