"""multimodal_kit: a PyTorch Lightning experiment kit for multimodal deep learning."""

__version__ = "0.1.0"
