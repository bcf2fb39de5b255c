import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from multimodal_kit.data.text import (
    BOS,
    EOS,
    PAD,
    UNK,
    canonical_text,
    decode_tokens,
    encode_texts,
    load_tokenizer,
    special_ids,
    token_counts,
    tokenizer_from_dict,
    tokenizer_to_dict,
    train_tokenizer,
)

CAPTIONS = ["a small red circle", "a large blue square left of a small red circle", "There is a big Green triangle."]


def test_trained_tokenizer_special_ids_and_round_trip() -> None:
    tokenizer = train_tokenizer(CAPTIONS)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == [PAD, BOS, EOS, UNK]
    ids = special_ids(tokenizer)
    assert (ids.pad, ids.bos, ids.eos) == (0, 1, 2)
    tokens, lengths = encode_texts(tokenizer, CAPTIONS)
    assert decode_tokens(tokenizer, tokens[:, 1:]) == [canonical_text(tokenizer, c) for c in CAPTIONS]
    assert canonical_text(tokenizer, CAPTIONS[2]) == "there is a big green triangle ."


def test_token_counts_are_the_lengths_encoding_gives() -> None:
    """Counted by the fast tokenizer's backend, as many tokens as ``encode_texts`` gives each text (BOS, EOS)."""
    texts = [*CAPTIONS, "", "zebra crossing unseen words"]
    for kind in ("word", "bpe", "char"):
        tokenizer = train_tokenizer(CAPTIONS, kind=kind)
        assert token_counts(tokenizer, texts) == encode_texts(tokenizer, texts)[1].tolist()
    shipped = train_tokenizer(CAPTIONS)  # a hub tokenizer.json may switch truncation and padding on
    shipped.backend_tokenizer.enable_truncation(max_length=3)
    shipped.backend_tokenizer.enable_padding(length=8)
    assert token_counts(shipped, texts) == [len(t.split()) + (t.endswith(".") and 1) + 2 for t in texts]


def test_encode_adds_bos_eos_and_pads() -> None:
    tokenizer = train_tokenizer(CAPTIONS)
    tokens, lengths = encode_texts(tokenizer, ["a red circle", "a large blue square left of a small red circle"])
    assert lengths.tolist() == [5, 12]
    assert tokens.shape == (2, 12)
    assert tokens[0, 0] == 1 and tokens[0, 4] == 2 and tokens[0, 5:].eq(0).all()
    assert tokens[1, 0] == 1 and tokens[1, 11] == 2
    unknown = encode_texts(tokenizer, ["a purple zebra"])[0]
    assert unknown[0, 2:4].tolist() == [3, 3]


def test_decode_stops_at_first_eos() -> None:
    tokenizer = train_tokenizer(CAPTIONS)
    tokens, _ = encode_texts(tokenizer, ["a red circle"])
    after_eos = torch.cat([tokens[:, 1:], tokens[:, 1:3]], 1)  # "a red circle <eos> a red"
    assert decode_tokens(tokenizer, after_eos) == ["a red circle"]


def test_checkpoint_form_restores_the_same_tokenizer() -> None:
    tokenizer = train_tokenizer(CAPTIONS)
    restored = tokenizer_from_dict(tokenizer_to_dict(tokenizer))
    assert restored.get_vocab() == tokenizer.get_vocab()
    assert special_ids(restored) == special_ids(tokenizer)


def test_load_hf_tokenizer_by_path_uses_cls_sep(tmp_path) -> None:
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "red", "circle"])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    bert_like = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]")
    bert_like.save_pretrained(tmp_path / "tok")
    loaded = load_tokenizer(str(tmp_path / "tok"))
    assert special_ids(loaded) == special_ids(loaded) and special_ids(loaded).bos == 2 and special_ids(loaded).eos == 3
    tokens, _ = encode_texts(loaded, ["a red circle"])
    assert tokens.tolist() == [[2, 4, 5, 6, 3]]


def test_load_tokenizer_without_special_tokens_adds_them(tmp_path) -> None:
    backend = Tokenizer(models.WordLevel({"a": 0, "b": 1, "?": 2}, unk_token="?"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="?").save_pretrained(tmp_path / "tok")
    loaded = load_tokenizer(str(tmp_path / "tok"))
    ids = special_ids(loaded)
    assert {ids.pad, ids.bos, ids.eos} == {3, 4, 5} and len(loaded) == 6


def test_missing_tokenizer_is_a_clear_error(tmp_path) -> None:
    import pytest

    with pytest.raises(ValueError, match="--data.tokenizer"):
        load_tokenizer(str(tmp_path / "nothing-here"))
