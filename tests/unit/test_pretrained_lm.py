"""A pretrained causal LM as the decoder, from a tiny random GPT-2 saved here (by path, no network): both
connectors' shapes, what learns in each training mode, a loss that falls, speech too, the clear refusals, and a
checkpoint that carries only what was trained."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, Trainer, seed_everything

from multimodal_kit.cli import main
from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.text_audio import TextAudioDataModule
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods import PretrainedLM
from multimodal_kit.methods.pretrained_lm import FROZEN_LM_KEY
from multimodal_kit.models.encoders import ConvImageEncoder
from tests.conftest import TINY_SHAPES, TINY_SPOKEN
from tests.helpers import save_gpt2, write_imagefolder


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_gpt2(tmp_path_factory.mktemp("lm") / "gpt2")


def captions(lm: Path) -> ImageCaptionDataModule:
    data = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8, tokenizer=str(lm))
    data.setup("fit")
    return data


def method(lm: Path, data: ImageCaptionDataModule | TextAudioDataModule, **options: object) -> PretrainedLM:
    return PretrainedLM(vocab_size=data.vocab_size, pad_id=data.pad_id, bos_id=data.bos_id, eos_id=data.eos_id,
                        media=data.media, language_model=str(lm), **options)


def lm_weights(model: PretrainedLM) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.decoder.lm.state_dict().items() if "lora_" not in k}


def fit_steps(model: PretrainedLM, data: object, steps: int, tmp_path: Path) -> list[float]:
    losses: list[float] = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            losses.append(float(outputs["loss"]))

    Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=[Record()], default_root_dir=str(tmp_path)).fit(model, data)
    return losses


@pytest.mark.parametrize(("connector", "mapper"), [("prefix", "mlp"), ("prefix", "transformer"),
                                                   ("cross_attention", "mlp")])
def test_both_connectors_give_next_token_logits_and_generate(gpt2: Path, connector: str, mapper: str) -> None:
    data = captions(gpt2)
    batch = next(iter(data.train_dataloader()))
    model = method(gpt2, data, connector=connector, mapper=mapper, prefix_length=4)
    tokens = batch["text_tokens"]
    logits = model.teacher_forced_logits(model.encode(batch), tokens[:, :-1])
    assert logits.shape == (8, tokens.shape[1] - 1, data.vocab_size)
    assert data.vocab_size == model.decoder.lm_vocab + 1  # the PAD the kit added: never predicted
    assert torch.isinf(logits[..., data.pad_id]).all() and torch.isfinite(logits[..., : data.pad_id]).all()
    for beam in (1, 3):
        result = model.generate(batch, beam_size=beam, max_length=6)
        assert result.tokens.shape[0] == 8 and result.tokens.shape[1] <= 6
        assert (result.tokens != data.pad_id).all()


def test_frozen_lm_stays_unchanged_and_only_the_mapper_learns(gpt2: Path, tmp_path: Path) -> None:
    data = captions(gpt2)
    model = method(gpt2, data, encoder=ConvImageEncoder(widths=[8, 16]))
    before = lm_weights(model)
    fit_steps(model, data, 2, tmp_path)
    after = lm_weights(model)
    assert all(torch.equal(before[k], after[k]) for k in before) and not model.decoder.lm.training
    optimized = {id(p) for group in model.optimizers().optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in model.decoder.lm.parameters()}
    assert {id(p) for p in model.decoder.mapper.parameters()} <= optimized


def test_lora_gives_the_optimizer_only_adapters_and_the_lm_base_stays(gpt2: Path, tmp_path: Path) -> None:
    data = captions(gpt2)
    model = method(gpt2, data, encoder=ConvImageEncoder(widths=[8, 16]), lm_training="lora", lora_rank=4)
    before = lm_weights(model)
    fit_steps(model, data, 2, tmp_path)
    lm_params = dict(model.decoder.lm.named_parameters())
    optimized = {id(p) for group in model.optimizers().optimizer.param_groups for p in group["params"]}
    trained = [name for name, p in lm_params.items() if id(p) in optimized]
    assert trained and all("lora_" in name for name in trained)
    assert all(torch.equal(before[k], v) for k, v in lm_weights(model).items())
    # cross-attention: its new layers learn beside the adapters; LoRA leaves the pretrained weights alone
    cross = method(gpt2, data, connector="cross_attention", lm_training="lora", lora_rank=4)
    learning = [n for n, p in cross.decoder.lm.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "crossattention" in n or "ln_cross_attn" in n for n in learning)
    assert any("ln_cross_attn" in n for n in learning)


@pytest.mark.parametrize("lm_training", ["frozen", "lora", "full"])
def test_the_loss_falls_when_overfitting_a_few_pairs(gpt2: Path, tmp_path: Path, lm_training: str) -> None:
    seed_everything(0)
    data = ImageCaptionDataModule(embedded_options={"num_train": 16, "num_validation": 8, "num_test": 8},
                                  batch_size=16, tokenizer=str(gpt2), train_text="first")
    data.setup("fit")
    model = method(gpt2, data, encoder=ConvImageEncoder(widths=[8, 16]), lm_training=lm_training, lr=3e-3)
    losses = fit_steps(model, data, 60, tmp_path)
    assert losses[-1] < 0.6 * losses[0], losses[::10]


def test_speech_to_text_with_a_pretrained_lm_decoder(gpt2: Path, tmp_path: Path) -> None:
    data = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=8, tokenizer=str(gpt2))
    data.setup("fit")
    model = method(gpt2, data, connector="cross_attention", lm_training="lora", lora_rank=4)
    losses = fit_steps(model, data, 2, tmp_path)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert model.generate(next(iter(data.val_dataloader())), max_length=5).tokens.shape[0] == 8


def test_a_pad_that_is_eos_and_a_padded_embedding_matrix(tmp_path: Path) -> None:
    """Many LM tokenizers set PAD = EOS (the loss would then never see EOS) and pad their embedding rows."""
    lm = save_gpt2(tmp_path / "lm", extra_rows=7, pad_is_eos=True)
    data = captions(lm)
    assert data.pad_id != data.eos_id and data.pad_id == data.vocab_size - 1  # the kit's own PAD, added
    model = method(lm, data)
    batch = next(iter(data.train_dataloader()))
    logits = model.teacher_forced_logits(model.encode(batch), batch["text_tokens"][:, :-1])
    assert logits.shape[-1] == data.vocab_size and model.decoder.lm_vocab == data.vocab_size - 1
    assert model.decoder.lm.get_output_embeddings().weight.shape[0] == data.vocab_size - 1 + 7


def test_refusals_name_the_fix(gpt2: Path, tmp_path: Path) -> None:
    data = captions(gpt2)
    llama = save_gpt2(tmp_path / "llama", llama=True)
    with pytest.raises(ConfigError, match="has no cross-attention blocks to add: use connector: prefix"):
        method(llama, data, connector="cross_attention")
    method(llama, data, connector="prefix")  # a Llama-like LM takes a prefix
    with pytest.raises(ConfigError, match="label_smoothing must be 0"):
        method(gpt2, data, label_smoothing=0.1)
    other = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8)  # its own small word tokenizer
    other.setup("fit")
    with pytest.raises(ConfigError, match=f"use the LM's own tokenizer \\(--data.init_args.tokenizer {gpt2}\\)"):
        method(gpt2, other)


def test_the_checkpoint_carries_what_was_trained_and_predicts_alone(gpt2: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["fit", "--model", "PretrainedLM", "--model.init_args.language_model", str(gpt2),
          "--model.init_args.prefix_length", "4", "--model.init_args.encoder",
          json.dumps({"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}),
          "--data", "ImageCaptionDataModule", "--data.init_args.embedded_options", json.dumps(TINY_SHAPES),
          "--data.init_args.batch_size", "16", "--run_dir", str(run), "--trainer.max_epochs", "1",
          "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false"])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    assert not [k for k in checkpoint["state_dict"] if k.startswith("decoder.lm.")]  # frozen: none of the LM
    assert checkpoint[FROZEN_LM_KEY]["name_or_path"] == str(gpt2) and checkpoint[FROZEN_LM_KEY]["left_out"] > 0
    assert any(k.startswith("decoder.mapper.") for k in checkpoint["state_dict"])
    loaded = PretrainedLM.load_from_checkpoint(best, map_location="cpu", weights_only=True)
    reference = copy.deepcopy(loaded.state_dict())
    assert all(torch.equal(reference[k], v) for k, v in checkpoint["state_dict"].items())

    images = tmp_path / "imgs"
    write_imagefolder(images, {"train": 2})
    out = tmp_path / "preds"
    main(["predict", "--ckpt_path", str(best), "--data.predict_path", str(images / "train"), "--output_dir",
          str(out), "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(isinstance(r["text"], str) for r in records)


@pytest.mark.parametrize("connector", ["prefix", "cross_attention"])
def test_cached_decoding_gives_the_tokens_of_running_the_whole_history_again(gpt2: Path, connector: str) -> None:
    """Greedy and beam search with the LM's key–value cache (reordered with the beams) against a step that runs
    the LM over the prefix and every token so far, as decoding did before the cache: the same tokens and scores."""
    from multimodal_kit.models.search import beam_search, greedy_search

    data = captions(gpt2)
    batch = next(iter(data.train_dataloader()))
    seed_everything(0)
    model = method(gpt2, data, connector=connector, prefix_length=4).eval()
    decoder = model.decoder

    def stepper(use_cache: bool) -> Callable[[torch.Tensor, dict], tuple[torch.Tensor, dict, None]]:
        def step(tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict, None]:
            logits, state = decoder.step(tokens, state, use_cache=use_cache)
            assert ("cache" in state) == use_cache
            return logits.float().log_softmax(-1), state, None
        return step

    options = dict(batch_size=8, bos=data.bos_id, eos=data.eos_id, max_length=12)
    with torch.no_grad():
        memory = model.encode(batch)
        for search, extra in ((greedy_search, {}), (beam_search, {"beam_size": 3})):
            slow = search(stepper(False), decoder.initial_state(memory), **options, **extra)
            fast = search(stepper(True), decoder.initial_state(memory), **options, **extra)
            assert torch.equal(fast.tokens, slow.tokens) and torch.equal(fast.lengths, slow.lengths)
            assert torch.allclose(fast.scores, slow.scores, atol=1e-4)
            assert fast.lengths.float().mean() > 4  # long enough for the cache to carry several steps
