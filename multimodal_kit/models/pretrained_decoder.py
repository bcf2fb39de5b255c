"""A pretrained causal language model from ``transformers`` as the text decoder (GPT-2, SmolLM, Qwen-class models).

The source's features (B, N, D) reach the LM one of two ways:

- ``prefix`` (ClipCap, Mokady et al. 2021): a mapping network turns them into ``prefix_length`` embeddings in
  the LM's input space, placed before the text; ``mlp`` maps their masked mean (ClipCap's MLP), ``transformer``
  lets ``prefix_length`` learned queries attend over them (ClipCap's transformer mapper). Works with any causal LM.
- ``cross_attention`` (``VisionEncoderDecoderModel``'s way): the LM is loaded with ``add_cross_attention`` (new,
  trained layers in every block) and attends over the features, projected to its width. Needs an architecture
  with cross-attention blocks (GPT-2 and BERT-like decoders; Llama-like models have none).

``training`` chooses what learns besides the mapping: ``frozen`` (the LM keeps its weights and stays in eval
mode; in ``cross_attention`` its new cross-attention layers still learn), ``lora`` (low-rank adapters through
``peft``), or ``full``. The kit's tokenizer is the LM's own, plus the PAD token the kit adds where the LM has none:
ids past the LM's vocabulary are never fed to it (attention masks them) and get no probability.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from multimodal_kit.errors import ConfigError

Connector = Literal["prefix", "cross_attention"]
LmTraining = Literal["frozen", "lora", "full"]
CROSS_ATTENTION_PARTS = ("crossattention", "ln_cross_attn")  # GPT-2's names for the layers add_cross_attention adds


def load_causal_lm(name_or_path: str, cross_attention: bool, trust_remote_code: bool) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained``, with cross-attention blocks added if asked; clear errors."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        if cross_attention:
            config.add_cross_attention = True
        lm = AutoModelForCausalLM.from_pretrained(name_or_path, config=config, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(f"language_model {name_or_path!r} could not be loaded as a causal LM ({error}). Give a hub "
                          "id or a directory written by `save_pretrained`; a model that ships its own code also "
                          "needs trust_remote_code: true, if you trust it.") from error
    if cross_attention and not any(part in name for name, _ in lm.named_modules() for part in CROSS_ATTENTION_PARTS):
        raise ConfigError(f"language_model {name_or_path!r} ({config.model_type}) has no cross-attention blocks to "
                          "add: use connector: prefix, which works with any causal LM.")
    return lm


def lm_tokens(name_or_path: str, lm: nn.Module, trust_remote_code: bool) -> int:
    """The tokens of the LM's own tokenizer (its embedding matrix may have more rows, padded for speed, which no
    text ever uses: those get no probability either)."""
    from transformers import AutoTokenizer

    rows = int(lm.get_output_embeddings().weight.shape[0])
    try:
        return min(rows, len(AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)))
    except (OSError, ValueError):  # a model saved without its tokenizer: every row is a token
        return rows


def _heads(width: int) -> int:
    return next(h for h in (8, 4, 2, 1) if width % h == 0)


class PrefixMapper(nn.Module):
    """Source features (B, N, D) and their mask (B, N) → ``length`` prefix embeddings (B, length, H).

    Args:
        source_dim: D.
        lm_dim: H, the LM's embedding size.
        length: prefix embeddings.
        kind: ``mlp`` (the masked mean through two layers into length × H) or ``transformer`` (``length`` learned
            queries, a small transformer decoder attending over the projected features).
        layers: transformer layers (``transformer`` only).
    """

    def __init__(self, source_dim: int, lm_dim: int, length: int = 10, kind: Literal["mlp", "transformer"] = "mlp",
                 layers: int = 2) -> None:
        super().__init__()
        self.length, self.lm_dim, self.kind = length, lm_dim, kind
        if kind == "mlp":
            hidden = (source_dim + length * lm_dim) // 2
            self.net = nn.Sequential(nn.Linear(source_dim, hidden), nn.Tanh(), nn.Linear(hidden, length * lm_dim))
        else:
            self.project = nn.Linear(source_dim, lm_dim)
            self.queries = nn.Parameter(torch.randn(length, lm_dim) * 0.02)
            block = nn.TransformerDecoderLayer(lm_dim, _heads(lm_dim), 4 * lm_dim, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.net = nn.TransformerDecoder(block, layers)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            weights = mask.unsqueeze(-1).to(features.dtype)
            pooled = (features * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, D)
            return self.net(pooled).view(len(features), self.length, self.lm_dim)
        queries = self.queries.unsqueeze(0).expand(len(features), -1, -1)
        return self.net(queries, self.project(features), memory_key_padding_mask=~mask)


class PretrainedTextDecoder(nn.Module):
    """A ``transformers`` causal LM reading source features (see the module docstring).

    Args:
        name_or_path: the LM's hub id or local directory.
        source_dim: D, the encoder's feature size.
        vocab_size: the kit's vocabulary (the LM's tokenizer and the tokens the kit added).
        pad_id: the kit's PAD id (never fed to the LM).
        connector: ``prefix`` or ``cross_attention``.
        prefix_length: prefix embeddings (``prefix``).
        mapper: ``mlp`` or ``transformer`` (``prefix``).
        mapper_layers: the transformer mapper's layers.
        training: ``frozen``, ``lora`` or ``full``.
        lora_rank: LoRA's rank r.
        lora_alpha: LoRA's scaling α.
        lora_dropout: dropout on LoRA's input.
        lora_targets: module names LoRA adapts; default: ``peft``'s choice for the architecture.
        gradient_checkpointing: recompute the LM's activations in the backward pass (less memory, more time);
            ``transformers`` does it only in training mode, so with ``lora`` or ``full`` (a frozen LM stays in eval).
        trust_remote_code: run Python code shipped with the LM.
    """

    def __init__(self, name_or_path: str, source_dim: int, vocab_size: int, pad_id: int,
                 connector: Connector = "prefix", prefix_length: int = 10,
                 mapper: Literal["mlp", "transformer"] = "mlp", mapper_layers: int = 2,
                 training: LmTraining = "frozen", lora_rank: int = 8, lora_alpha: int = 16,
                 lora_dropout: float = 0.05, lora_targets: list[str] | None = None,
                 gradient_checkpointing: bool = False, trust_remote_code: bool = False) -> None:
        super().__init__()
        self.name_or_path, self.connector, self.training_mode = name_or_path, connector, training
        lm = load_causal_lm(name_or_path, connector == "cross_attention", trust_remote_code)
        self.lm_vocab = lm_tokens(name_or_path, lm, trust_remote_code)
        if vocab_size < self.lm_vocab:
            raise ConfigError(f"the data's tokenizer has {vocab_size} tokens, fewer than {name_or_path!r}'s "
                              f"{self.lm_vocab}: use the LM's own tokenizer (--data.init_args.tokenizer "
                              f"{name_or_path}).")
        self.vocab_size, self.pad_id = vocab_size, pad_id
        from multimodal_kit.compat import model_revision  # here: importing a network never imports Lightning

        self.revision = model_revision(lm.config)
        width = int(lm.get_input_embeddings().weight.shape[1])
        if gradient_checkpointing:
            lm.gradient_checkpointing_enable()
        if training == "lora":
            from peft import LoraConfig, get_peft_model

            lm.requires_grad_(False)
            lm = get_peft_model(lm, LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                                               target_modules=lora_targets))
        elif training == "frozen":
            lm.requires_grad_(False)
        for name, parameter in lm.named_parameters():  # new cross-attention layers always learn
            if any(part in name for part in CROSS_ATTENTION_PARTS) and "lora_" not in name:
                parameter.requires_grad_(True)
        self.lm = lm
        if connector == "prefix":
            self.mapper: nn.Module = PrefixMapper(source_dim, width, prefix_length, mapper, mapper_layers)
        else:
            self.mapper = nn.Linear(source_dim, width)
        self.train()

    def train(self, mode: bool = True) -> PretrainedTextDecoder:
        super().train(mode)
        if self.training_mode == "frozen":
            self.lm.eval()  # dropout off in the frozen LM (its new cross-attention layers included)
        return self

    @property
    def embeddings(self) -> nn.Module:
        return self.lm.get_input_embeddings()

    # ------------------------------------------------------------------ what the method calls
    def context(self, features: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Source features (B, N, D), mask (B, N) → what every decoding step reads: ``prefix`` (B, k, H) or
        ``encoder`` (B, N, H) with ``encoder_mask`` (B, N)."""
        if self.connector == "prefix":
            return {"prefix": self.mapper(features, mask)}
        return {"encoder": self.mapper(features), "encoder_mask": mask}

    def forward(self, context: dict[str, torch.Tensor], tokens: torch.Tensor,
                token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T) (the kit's ids, BOS first) → logits (B, T, vocab_size) for the next token at each place."""
        embeds, valid, kwargs = self._inputs(context, tokens, token_mask)
        logits = self.lm(inputs_embeds=embeds, attention_mask=valid.long(), use_cache=False, **kwargs).logits
        return self.kit_logits(logits[:, -tokens.shape[1]:])

    def _inputs(self, context: dict[str, torch.Tensor], tokens: torch.Tensor, token_mask: torch.Tensor | None,
                prefix: bool = True) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """What the LM reads for ``tokens`` (B, T): input embeddings (B, k + T, H) with the prefix first (``prefix``
        connector, unless ``prefix`` is false: it is in the cache already), their mask, and the encoder states
        (``cross_attention``)."""
        valid = tokens != self.pad_id if token_mask is None else token_mask
        embeds = self.embeddings(tokens.masked_fill(tokens >= self.lm_vocab, 0))  # PAD never reaches the LM
        kwargs: dict[str, Any] = {}
        if self.connector == "prefix":
            if prefix:
                start = context["prefix"].to(embeds.dtype)
                embeds = torch.cat([start, embeds], 1)
                valid = torch.cat([torch.ones(start.shape[:2], dtype=torch.bool, device=valid.device), valid], 1)
        else:
            kwargs = {"encoder_hidden_states": context["encoder"].to(embeds.dtype),
                      "encoder_attention_mask": context["encoder_mask"].long()}
        return embeds, valid, kwargs

    def kit_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The LM's logits (B, T, V_lm') → the kit's (B, T, vocab_size): rows past the LM's tokens dropped (never
        text), the tokens the kit added (PAD) given no probability."""
        logits = logits[..., : self.lm_vocab]
        if self.vocab_size > self.lm_vocab:
            extra = logits.new_full((*logits.shape[:2], self.vocab_size - self.lm_vocab), float("-inf"))
            logits = torch.cat([logits, extra], -1)
        return logits

    def initial_state(self, context: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The search's state: the context, the tokens so far (B, 0) and, once the first step ran, the LM's
        key–value cache (``cache``; beam search reorders it with ``reorder_cache``)."""
        batch = next(iter(context.values()))
        return {**context, "history": torch.zeros(len(batch), 0, dtype=torch.long, device=batch.device)}

    def step(self, tokens: torch.Tensor, state: dict[str, Any],
             use_cache: bool = True) -> tuple[torch.Tensor, dict[str, Any]]:
        """tokens (N,) → logits (N, vocab_size) of the next one, the state with them appended. The first step runs
        the LM over the prefix (or attends to the encoder) and the first token; each later step feeds only the new
        token, reading the earlier ones from the key–value cache — the same logits as running the whole history
        again, at a cost per step that does not grow with it. ``use_cache=False`` runs the whole history at every
        step (decoding before the cache: the reference its test and benchmark compare against)."""
        history = torch.cat([state["history"], tokens.unsqueeze(1)], 1)
        context = {k: v for k, v in state.items() if k not in ("history", "cache")}
        cache = state.get("cache")
        if not use_cache:
            return self(context, history, torch.ones_like(history, dtype=torch.bool))[:, -1], {**context,
                                                                                                "history": history}
        if cache is None:
            embeds, valid, kwargs = self._inputs(context, history, torch.ones_like(history, dtype=torch.bool))
        else:
            embeds, _, kwargs = self._inputs(context, tokens.unsqueeze(1), None, prefix=False)
            prefix = context["prefix"].shape[1] if self.connector == "prefix" else 0
            valid = torch.ones(len(history), prefix + history.shape[1], dtype=torch.bool, device=history.device)
        out = self.lm(inputs_embeds=embeds, attention_mask=valid.long(), past_key_values=cache, use_cache=True,
                      **kwargs)
        return self.kit_logits(out.logits[:, -1:])[:, 0], {**context, "history": history,
                                                           "cache": out.past_key_values}
