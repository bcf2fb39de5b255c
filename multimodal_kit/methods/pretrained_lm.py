"""``PretrainedLM``: media → text with a pretrained causal language model as the decoder (ClipCap's prefix, or
VisionEncoderDecoder-style cross-attention), frozen, with LoRA adapters, or fully fine-tuned.

Everything else is the kit's text generation: the encoder (any, e.g. a frozen CLIP or wav2vec 2.0 tower, whose
features the data module caches), teacher-forced cross-entropy, greedy and beam search, the text metrics, predict
and W&B. A checkpoint carries what was trained (mapper, adapters, new cross-attention layers, a trained encoder)
and the LM's name and revision, not a copy of the frozen LM: loading it reads the LM from its name again.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.text_generation import TextGenerationMethod
from multimodal_kit.models.pretrained_decoder import Connector, LmTraining, PretrainedTextDecoder
from multimodal_kit.models.search import State
from multimodal_kit.utils import rank_zero_info

FROZEN_LM_KEY = "frozen_language_model"  # in a checkpoint: the LM it needs, and the weights it left out


class PretrainedLM(TextGenerationMethod):
    """Encoder → features (B, N, D) → a pretrained causal LM writes the text.

    Args:
        language_model: the LM's hub id or local directory (the data's tokenizer must be its own: the CLI sets
            ``--data.init_args.tokenizer`` to it when unset).
        connector: ``prefix`` (ClipCap: a mapper makes ``prefix_length`` embeddings placed before the text) or
            ``cross_attention`` (new cross-attention layers in the LM, over the projected features).
        prefix_length: prefix embeddings.
        mapper: ``mlp`` (ClipCap's MLP over the pooled features) or ``transformer`` (learned queries attending
            over every feature).
        mapper_layers: the transformer mapper's layers.
        lm_training: ``frozen`` (only the mapper, and new cross-attention layers, learn), ``lora`` (low-rank
            adapters through ``peft``), or ``full``.
        lora_rank: LoRA's rank r.
        lora_alpha: LoRA's α.
        lora_dropout: LoRA's dropout.
        lora_targets: the LM's module names LoRA adapts (default: ``peft``'s choice for the architecture).
        lm_lr: the learning rate of the LM's trained parameters (adapters, new layers, or all); default ``lr``.
        gradient_checkpointing: recompute the LM's activations in backward (for large LMs on GPUs; with ``lora``
            or ``full``: ``transformers`` does not checkpoint a frozen LM, which stays in eval mode).
        trust_remote_code: run Python code shipped with the LM.
        **kwargs: the options of :class:`~multimodal_kit.methods.text_generation.TextGenerationMethod`.
    """

    def __init__(self, language_model: str = "gpt2", connector: Connector = "prefix", prefix_length: int = 10,
                 mapper: Literal["mlp", "transformer"] = "mlp", mapper_layers: int = 2,
                 lm_training: LmTraining = "frozen", lora_rank: int = 8, lora_alpha: int = 16,
                 lora_dropout: float = 0.05, lora_targets: list[str] | None = None, lm_lr: float | None = None,
                 gradient_checkpointing: bool = False, trust_remote_code: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.hparams.label_smoothing > 0:
            raise ConfigError("PretrainedLM: label_smoothing must be 0 — the tokens the kit adds to the LM's "
                              "vocabulary (PAD) get no probability, so smoothing onto them is undefined.")

    def configure_models(self) -> None:
        hp = self.hparams
        self.encoder, dim = self.build_encoder()
        self.decoder = PretrainedTextDecoder(
            hp.language_model, dim, hp.vocab_size, hp.pad_id, connector=hp.connector, prefix_length=hp.prefix_length,
            mapper=hp.mapper, mapper_layers=hp.mapper_layers, training=hp.lm_training, lora_rank=hp.lora_rank,
            lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout, lora_targets=hp.lora_targets,
            gradient_checkpointing=hp.gradient_checkpointing, trust_remote_code=hp.trust_remote_code)

    # ------------------------------------------------------------------ decoding
    def encode(self, batch: dict[str, Any]) -> State:
        return self.decoder.context(*self.encode_source(batch))

    def initial_state(self, memory: State) -> State:
        return self.decoder.initial_state(memory)

    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, None]:
        logits, state = self.decoder.step(tokens, state)
        return logits, state, None

    def teacher_forced_logits(self, memory: State, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(memory, inputs)

    # ------------------------------------------------------------------ optimization
    def parameter_groups(self) -> list[dict[str, Any]]:
        """What learns: the mapper (``lr``), the LM's trained parameters (``lm_lr``) and a trained encoder
        (``encoder_lr``); frozen parameters are left out."""
        hp = self.hparams
        lm = {id(p) for p in self.decoder.lm.parameters()}
        encoder = {id(p) for p in self.encoder.parameters()}
        return [
            {"params": [p for p in self.parameters() if p.requires_grad and id(p) not in lm | encoder]},
            {"params": [p for p in self.decoder.lm.parameters() if p.requires_grad], "lr": hp.lm_lr or hp.lr},
            {"params": [p for p in self.encoder.parameters() if p.requires_grad], "lr": hp.encoder_lr or hp.lr},
        ]

    # ------------------------------------------------------------------ checkpoints without the frozen LM
    def _frozen_keys(self) -> list[str]:
        """The state-dict keys of the LM's weights that do not learn (tied copies and buffers included)."""
        trainable = {f"decoder.lm.{name}" for name, p in self.decoder.lm.named_parameters(remove_duplicate=False)
                     if p.requires_grad}
        return [k for k in self.state_dict() if k.startswith("decoder.lm.") and k not in trainable]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        frozen = set(self._frozen_keys())
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k not in frozen}
        checkpoint[FROZEN_LM_KEY] = {"name_or_path": self.hparams.language_model, "revision": self.decoder.revision,
                                     "left_out": len(frozen)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get(FROZEN_LM_KEY)
        if saved is None:
            return
        if saved.get("revision") and self.decoder.revision and saved["revision"] != self.decoder.revision:
            rank_zero_info(f"PretrainedLM: the checkpoint was trained on {saved['name_or_path']} at revision "
                           f"{saved['revision']}; loaded now is {self.decoder.revision}.")
        state = self.state_dict()
        missing = [k for k in self._frozen_keys() if k not in checkpoint["state_dict"]]
        if len(missing) != saved["left_out"]:
            raise ConfigError(f"this checkpoint left out {saved['left_out']} frozen weights of "
                              f"{saved['name_or_path']!r}, but the model built now has {len(missing)}: build it "
                              "with the same language_model, connector and lm_training.")
        checkpoint["state_dict"].update({k: state[k] for k in missing})  # the frozen LM, as just loaded by name
