"""The encoder of another kit run as a source encoder: transfer what one task learnt to another.

A captioner's CNN has learnt to see the ``shapes`` scenes from every word of every caption; an image question
answering model that starts from it needs to learn only how questions ask about them. Any method that takes
``--model.init_args.encoder`` takes one::

    encoder:
      class_path: multimodal_kit.models.transfer.EncoderFromCheckpoint
      init_args: {checkpoint: runs/CrossModalAttention-ImageCaption-.../checkpoints/last.ckpt}

The encoder is rebuilt as that run built it (its ``encoder`` hyperparameter, or the kit's default for its medium)
and given that run's weights. It trains on by default (``trainable: true``); frozen, its features can be cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from multimodal_kit.errors import ConfigError
from multimodal_kit.models.encoders import default_encoder
from multimodal_kit.models.pretrained import FrozenUnlessTrainable


def checkpoint_encoder(checkpoint: str | Path, key: str = "encoder") -> tuple[nn.Module, dict[str, Any]]:
    """The module under ``key`` in a kit checkpoint, rebuilt from its hyperparameters and loaded with its weights,
    and those hyperparameters."""
    from lightning.pytorch.cli import instantiate_class

    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ConfigError(f"EncoderFromCheckpoint: no checkpoint at {str(path)!r}; give the .ckpt of a kit run "
                          "(its checkpoints/ folder, e.g. last.ckpt).")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    hparams, weights = saved.get("hyper_parameters", {}), saved.get("state_dict", {})
    prefix = f"{key}."
    state = {name[len(prefix):]: value for name, value in weights.items() if name.startswith(prefix)}
    if not state:
        roots = sorted({name.split(".")[0] for name in weights})
        raise ConfigError(f"EncoderFromCheckpoint: {str(path)!r} holds no {key!r} module (its modules: {roots}); "
                          "give a checkpoint of a run that encodes media (a captioner, a speech recognizer, image "
                          "question answering), or name its module with key.")
    spec = hparams.get(key)
    if isinstance(spec, dict) and "class_path" in spec:
        module = instantiate_class((), spec)
    elif spec is None and "media" in hparams:
        module = default_encoder(hparams["media"], n_mels=hparams.get("n_mels", 64))
    else:
        raise ConfigError(f"EncoderFromCheckpoint: {str(path)!r} does not say how its {key!r} was built (neither a "
                          "class_path in its hyperparameters nor the kit's default encoder).")
    if isinstance(module, FrozenUnlessTrainable):  # a pretrained wrapper: EncoderFromCheckpoint's trainable decides
        module.trainable = True
        module.freeze_unless_trainable()
    module.load_state_dict(state)
    return module, hparams


class EncoderFromCheckpoint(FrozenUnlessTrainable):
    """The encoder of a kit checkpoint (:func:`checkpoint_encoder`), as its run left it.

    Args:
        checkpoint: a kit run's ``.ckpt`` file.
        trainable: train it on (default) or keep it frozen (then in eval mode, and its features cacheable).
        key: the module's name in that run (``encoder`` in every kit method).

    Shapes are the rebuilt encoder's: images (B, 3, S, S) → regions (B, N, D); audio (B, T, F), lengths → frames.
    """

    def __init__(self, checkpoint: str, trainable: bool = True, key: str = "encoder") -> None:
        super().__init__()
        self.backbone, hparams = checkpoint_encoder(checkpoint, key)
        self.trainable = trainable
        self.media = getattr(self.backbone, "media", hparams.get("media"))
        for name in ("out_dim", "inputs", "sampling_rate"):
            if hasattr(self.backbone, name):
                setattr(self, name, getattr(self.backbone, name))
        if hasattr(self.backbone, "example_input"):
            self.example_input = self.backbone.example_input
        self.freeze_unless_trainable()

    def forward(self, *inputs: torch.Tensor) -> Any:
        """What the rebuilt encoder returns for the media it reads (see the class docstring)."""
        return self.backbone(*inputs)
