"""Which values the CLI links from the data module into the method, and how: a user never types them twice.

jsonargparse passes a linked value only to a method whose constructor declares it (and the method keeps only what it
declares, :class:`~multimodal_kit.methods.base.MultimodalMethod`); a linked value is never copied from a
checkpoint's config, since the data gives it again.
"""

from __future__ import annotations

from typing import Any

from multimodal_kit.utils import rank_zero_info

#: model arguments the CLI links from the data module, and the data module attribute each comes from (read with
#: a default where only one pair type has it); they are never copied from a checkpoint's config
DATA_LINKS = {"vocab_size": "vocab_size", "pad_id": "pad_id", "bos_id": "bos_id", "eos_id": "eos_id",
              "media": "media", "image_size": "image_size", "n_mels": "n_mels", "num_classes": "num_classes"}
LINK_DEFAULTS = {"image_size": 64, "n_mels": 64, "num_classes": 0}
#: what the tokenizer's links give for data without text (a method that reads or writes text is refused anyway)
NO_TEXT = {"vocab_size": 0, "pad_id": 0, "bos_id": 1, "eos_id": 2}
LINKED_MODEL_ARGS = tuple(DATA_LINKS)


class DataAttribute:
    """A link function reading one attribute of the data module, or a default where it has none (picklable, so
    the parser travels into ``ddp_spawn`` workers)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, data: Any) -> Any:
        if self.name in NO_TEXT and not getattr(getattr(data, "fields", None), "has_text", True):
            return NO_TEXT[self.name]
        if self.name in LINK_DEFAULTS:
            return getattr(data, self.name, LINK_DEFAULTS[self.name])
        return getattr(data, self.name)


def link_language_model_tokenizer(config: Any) -> None:
    """A method with a pretrained ``language_model`` reads text with that model's own tokenizer: set it as the
    data's tokenizer when none is given (a different one is the method's to refuse, if its vocabulary does not fit)."""
    model_args, data_args = config.model.get("init_args") or {}, config.data.get("init_args") or {}
    language_model = model_args.get("language_model") if hasattr(model_args, "get") else None
    if language_model and hasattr(data_args, "get") and not data_args.get("tokenizer"):
        data_args.tokenizer = language_model
        rank_zero_info(f"--data.init_args.tokenizer {language_model}: the language model's own tokenizer.")
