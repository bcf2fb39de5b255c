"""Text side of every pair: the tokenizer and the one definition of BOS/EOS/PAD/UNK.

A tokenizer is either trained on the training captions with HF ``tokenizers`` (word-level by default) and wrapped
as a ``transformers`` fast tokenizer, or any HF tokenizer loaded by hub name or local path. Either way the kit
adds BOS/EOS itself (:func:`encode_texts`), so decoders see ``BOS w1 … wn EOS`` whatever the tokenizer's own
post-processing would do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from multimodal_kit.errors import ConfigError
from multimodal_kit.utils import rank_zero_info

if TYPE_CHECKING:
    from multimodal_kit.data.fields import Rows

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # trained tokenizers give them ids 0, 1, 2, 3 in this order


@dataclass(frozen=True)
class SpecialIds:
    """Token ids the models need: padding, start and end of sequence."""

    pad: int
    bos: int
    eos: int


def train_tokenizer(texts: Iterable[str], kind: Literal["word", "bpe", "char"] = "word", vocab_size: int = 8000,
                    min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Train a tokenizer on ``texts`` (lower-cased, split on whitespace and punctuation).

    Args:
        texts: the training captions or transcripts.
        kind: ``word`` (one id per word; the default for small closed vocabularies), ``bpe`` (sub-words) or
            ``char`` (one id per character, the space included: what speech synthesis reads).
        vocab_size: the largest vocabulary (``bpe``; a cap for ``word``).
        min_frequency: words seen fewer times become ``<unk>``.
    """
    if kind == "word":
        backend = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(SPECIAL_TOKENS))
        backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    elif kind == "bpe":
        backend = Tokenizer(models.BPE(unk_token=UNK, continuing_subword_prefix="##"))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(SPECIAL_TOKENS), continuing_subword_prefix="##")
        backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    elif kind == "char":
        backend = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=list(SPECIAL_TOKENS))
        backend.decoder = decoders.Fuse()  # characters joined as they are (spaces are characters here)
    else:
        raise ConfigError(f"tokenizer kind must be 'word', 'bpe' or 'char', got {kind!r}")
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()])
    backend.pre_tokenizer = (pre_tokenizers.Split(Regex("."), behavior="isolated") if kind == "char"
                             else pre_tokenizers.Whitespace())
    backend.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(backend)


def tokenizer_of_rows(rows: Rows, text_fields: Iterable[str], kind: Literal["word", "bpe", "char"],
                      min_frequency: int) -> PreTrainedTokenizerFast:
    """A tokenizer trained on every text of a split's rows: target texts, references and the task's further text
    fields (empty texts are bad rows, named by the checks, and left out here)."""
    texts = [*rows.texts, *(r for refs in rows.references for r in refs)]
    texts += [t for name in text_fields for t in rows.fields[name]]
    texts = [str(t) for t in texts if t]
    tokenizer = train_tokenizer(texts, kind=kind, min_frequency=min_frequency)
    rank_zero_info(f"Trained a {kind}-level tokenizer on {len(texts)} texts: {len(tokenizer)} tokens.")
    return tokenizer


def wrap_tokenizer(backend: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a ``tokenizers.Tokenizer`` that holds the kit's special tokens as a ``transformers`` fast tokenizer."""
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK)


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load any HF tokenizer by hub name or local path, giving it BOS/EOS/PAD if it lacks them.

    BERT-like tokenizers already have ``[CLS]``/``[SEP]``, used as BOS/EOS; anything still missing is added as a
    new special token (the kit's embeddings are trained, so a new id costs nothing), and so is a PAD where the
    tokenizer's PAD is its EOS (as many LM tokenizers have it). Code shipped with a hub
    tokenizer runs only with ``trust_remote_code``.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True,
                                                  trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"--data.tokenizer={name_or_path!r}: could not load a tokenizer from this hub name or local path "
            f"({error}). Give a directory written by `save_pretrained`, a hub id, or leave it unset to train "
            "one on the training captions; a tokenizer that ships its own code also needs "
            "--data.trust_remote_code true, if you trust it."
        ) from error
    if not tokenizer.is_fast:
        raise ConfigError(f"--data.tokenizer={name_or_path!r} has no fast (Rust) version, which the kit needs for "
                          "its text normalization; give a tokenizer directory with a tokenizer.json (any tokenizer "
                          "saved by `transformers` ≥ 4 has one).")
    missing: dict[str, str] = {}
    if tokenizer.bos_token is None:
        if tokenizer.cls_token is not None:
            tokenizer.bos_token = tokenizer.cls_token
        else:
            missing["bos_token"] = BOS
    if tokenizer.eos_token is None:
        if tokenizer.sep_token is not None:
            tokenizer.eos_token = tokenizer.sep_token
        else:
            missing["eos_token"] = EOS
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        missing["pad_token"] = PAD  # PAD must differ from EOS: the loss ignores PAD, and a model must learn EOS
    if missing:
        tokenizer.add_special_tokens(missing)
        rank_zero_info(f"--data.tokenizer={name_or_path!r} lacks {', '.join(missing)}: added "
                       f"{', '.join(missing.values())} as new tokens (the kit's embeddings learn them).")
    return tokenizer


def special_ids(tokenizer: PreTrainedTokenizerBase) -> SpecialIds:
    """The PAD/BOS/EOS ids of ``tokenizer``."""
    return SpecialIds(pad=tokenizer.pad_token_id, bos=tokenizer.bos_token_id, eos=tokenizer.eos_token_id)


def encode_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize a batch as ``BOS … EOS``, padded with PAD.

    Returns:
        tokens: long (B, L), L = the longest sequence in the batch including BOS and EOS.
        lengths: long (B,), the true lengths including BOS and EOS.
    """
    ids = special_ids(tokenizer)
    rows = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    lengths = torch.tensor([len(r) + 2 for r in rows], dtype=torch.long)
    tokens = torch.full((len(rows), max(lengths.tolist(), default=2)), ids.pad, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row) + 2] = torch.tensor([ids.bos, *row, ids.eos], dtype=torch.long)
    return tokens, lengths


def token_counts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[int]:
    """Number of tokens of each text, BOS and EOS included (a fast tokenizer's Rust backend counts them directly:
    half the time of building its ``BatchEncoding``, which counts on the data's every text add up to)."""
    backend = tokenizer.backend_tokenizer if getattr(tokenizer, "is_fast", False) else None
    if backend is not None and backend.truncation is None and backend.padding is None:  # else __call__ resets them
        return [len(e.ids) + 2 for e in backend.encode_batch(list(texts), add_special_tokens=False)]
    return [len(r) + 2 for r in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def decode_tokens(tokenizer: PreTrainedTokenizerBase, tokens: torch.Tensor) -> list[str]:
    """Turn generated ids (B, L) into text: everything from the first EOS on is cut, special tokens dropped."""
    ids = special_ids(tokenizer)
    texts = []
    for row in tokens.tolist():
        if ids.eos in row:
            row = row[: row.index(ids.eos)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip())
    return texts


def token_words(tokenizer: PreTrainedTokenizerBase, tokens: torch.Tensor) -> list[str]:
    """Each generated id (L,) as readable text (EOS shown as ``<eos>``), for attention pictures."""
    return [tokenizer.decode([t], clean_up_tokenization_spaces=False).strip() or "·" for t in tokens.tolist()]


def canonical_text(tokenizer: PreTrainedTokenizerBase, text: str) -> str:
    """``text`` as the metrics see it: the tokenizer's normalization (e.g. lower case), words split from
    punctuation, joined by single spaces. Applied to predictions and references alike."""
    backend = tokenizer.backend_tokenizer
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    words = pre_tokenizers.Whitespace().pre_tokenize_str(text)
    return " ".join(word for word, _ in words)


def tokenizer_to_dict(tokenizer: PreTrainedTokenizerBase) -> dict[str, str]:
    """A plain-data form of a fast tokenizer, stored in checkpoints (safe to load with ``weights_only``)."""
    return {
        "json": tokenizer.backend_tokenizer.to_str(),
        "pad_token": str(tokenizer.pad_token),
        "bos_token": str(tokenizer.bos_token),
        "eos_token": str(tokenizer.eos_token),
        "unk_token": str(tokenizer.unk_token) if tokenizer.unk_token is not None else "",
    }


def tokenizer_from_dict(state: dict[str, str]) -> PreTrainedTokenizerFast:
    """Inverse of :func:`tokenizer_to_dict`."""
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(state["json"]),
        pad_token=state["pad_token"],
        bos_token=state["bos_token"],
        eos_token=state["eos_token"],
        unk_token=state["unk_token"] or None,
    )
