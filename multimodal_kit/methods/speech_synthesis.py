"""Moved to :mod:`multimodal_kit.tasks.speech_synthesis`; this name stays so checkpoints and configs written
before the move (which name ``multimodal_kit.methods.speech_synthesis.*``) load in Python too."""

from multimodal_kit.tasks.speech_synthesis import AttentionSpeechSynthesis, Seq2SeqSpeechSynthesis

__all__ = ["AttentionSpeechSynthesis", "Seq2SeqSpeechSynthesis"]
