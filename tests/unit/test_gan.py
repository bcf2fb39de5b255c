"""The conditional GAN's pieces: network shapes, the matching-aware losses, one manual-optimization step, the
errors a user meets (non-finite loss, Trainer clipping/accumulation), pretrained text encoders, Griffin-Lim."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer

from multimodal_kit.callbacks import GeneratedSamples
from multimodal_kit.data.audio import LogMel
from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.text_audio import TextAudioDataModule
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods import ConditionalGAN
from multimodal_kit.models.gan import (
    FeatureDiscriminator,
    PretrainedTextEncoder,
    ProjectionDiscriminator,
    TextEncoder,
)
from multimodal_kit.models.gan_generator import ConvGenerator, up_block
from multimodal_kit.models.gan_losses import (
    discriminator_loss,
    generator_loss,
    matching_aware_penalty,
    mismatched_texts,
    nearest_texts,
)
from tests.conftest import TINY_SHAPES, TINY_SPOKEN

TINY_GAN = {"noise_dim": 8, "cond_dim": 16, "generator_width": 4, "discriminator_width": 4}


def tiny_images() -> ImageCaptionDataModule:
    return ImageCaptionDataModule(embedded_options=TINY_SHAPES, image_size=16, batch_size=8, eval_batch_size=8)


def tiny_audio() -> TextAudioDataModule:
    return TextAudioDataModule(embedded_options={**TINY_SPOKEN, "single_word": True}, normalize="none", n_mels=16,
                               batch_size=8, eval_batch_size=8)


def gan_for(dm: ImageCaptionDataModule | TextAudioDataModule, **kwargs: object) -> ConditionalGAN:
    options = dict(vocab_size=dm.vocab_size, pad_id=dm.pad_id, bos_id=dm.bos_id, eos_id=dm.eos_id,
                   media=dm.media, image_size=getattr(dm, "image_size", 64), n_mels=getattr(dm, "n_mels", 64),
                   max_frames=32)
    return ConditionalGAN(**(options | TINY_GAN | kwargs))


def tiny_trainer(tmp_path: Path, **kwargs: object) -> Trainer:
    options = dict(accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                   logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   default_root_dir=str(tmp_path))
    return Trainer(**(options | kwargs))


# ---------------------------------------------------------------------- networks
@pytest.mark.parametrize("upsample", ["transpose", "resize"])
@pytest.mark.parametrize(("channels", "size", "dims", "edge"), [(3, 64, 2, 4), (3, 16, 2, 4), (64, 128, 1, 8)])
def test_generator_and_discriminator_shapes(channels: int, size: int, dims: int, edge: int, upsample: str) -> None:
    generator = ConvGenerator(8, 16, channels, size, spatial_dims=dims, start=edge, width=4, upsample=upsample)
    discriminator = ProjectionDiscriminator(channels, 16, size, spatial_dims=dims, end=edge, width=4)
    samples = generator(torch.randn(5, 8), torch.randn(5, 16))
    assert samples.shape == (5, channels, *(size,) * dims)
    assert discriminator(samples, torch.randn(5, 16)).shape == (5,)


def test_resize_upsampling_leaves_no_checkerboard_on_a_flat_map_where_a_transposed_conv_does() -> None:
    """A flat input: every inner output pixel of nearest ×2 + 3×3 conv sees the same 9 weights, so it is flat too;
    a stride-2 transposed conv with kernel 4 adds a different pair of taps on even and odd pixels (the
    checkerboard of Odena et al. 2016)."""
    torch.manual_seed(0)
    flat = torch.ones(1, 4, 8, 8)
    resized = up_block(2, 4, 3, "resize")(flat)[..., 1:-1, 1:-1]  # (1, 3, 14, 14): away from the zero padding
    transposed = up_block(2, 4, 3, "transpose")(flat)[..., 1:-1, 1:-1]
    assert resized.shape == transposed.shape == (1, 3, 14, 14)
    assert torch.allclose(resized, resized[..., :1, :1].expand_as(resized), atol=1e-6)
    assert (transposed[..., 0, 0] - transposed[..., 0, 1]).abs().min() > 1e-3  # neighbours differ, per channel
    with pytest.raises(ConfigError, match="'transpose' or 'resize'"):
        up_block(2, 4, 3, "bilinear")


def test_sizes_that_are_not_a_power_of_two_times_the_first_map_are_refused() -> None:
    with pytest.raises(ValueError, match="power of two"):
        ConvGenerator(8, 16, 3, 48)


def test_text_encoder_reads_only_the_real_tokens() -> None:
    encoder = TextEncoder(vocab_size=10, pad_id=0, output_dim=6).eval()
    tokens = torch.tensor([[1, 5, 6, 2, 0, 0], [1, 5, 6, 2, 7, 7]])
    c = encoder(tokens, torch.tensor([4, 4]))
    assert c.shape == (2, 6) and torch.allclose(c[0], c[1], atol=1e-6)  # what follows the length is ignored


def test_gan_generates_both_modalities_in_the_data_modules_layout() -> None:
    images = gan_for(tiny_images()).eval()
    out = images.generate({"text_tokens": torch.tensor([[1, 4, 2]]), "text_lengths": torch.tensor([3])})
    assert out["image"].shape == (1, 3, 16, 16) and out["image"].abs().max() <= 1
    audio = gan_for(tiny_audio()).eval()
    out = audio.generate({"text_tokens": torch.tensor([[1, 4, 2], [1, 5, 2]]), "text_lengths": torch.tensor([3, 3])})
    assert out["audio"].shape == (2, 32, 16) and out["audio_lengths"].tolist() == [32, 32]


# ---------------------------------------------------------------------- losses
@pytest.mark.parametrize("kind", ["bce", "hinge"])
def test_matching_aware_loss_counts_the_wrong_text_pair_as_fake(kind: str) -> None:
    # a hand-built batch of D scores: the real images with their own captions score high; the same images with
    # shuffled captions either score high (D fooled) or low (D matching-aware)
    real, fake = torch.tensor([2.0, 2.0]), torch.tensor([-2.0, -2.0])
    wrong = torch.tensor([2.0, 2.0], requires_grad=True)
    fooled = discriminator_loss(real, wrong, fake, kind)
    aware = discriminator_loss(real, -wrong.detach(), fake, kind)
    assert aware < fooled  # calling the mismatched pair fake is what D is rewarded for
    fooled.backward()
    assert (wrong.grad > 0).all()  # gradient descent pushes the wrong pair's score down, to the fake side
    # a "wrong" pair whose text happens to equal the right one is not counted
    masked = discriminator_loss(real, wrong.detach(), fake, kind, wrong_mask=torch.tensor([False, False]))
    assert masked < fooled


def test_generator_loss_rewards_scores_called_real() -> None:
    for kind in ("bce", "hinge"):
        assert generator_loss(torch.tensor([3.0]), kind) < generator_loss(torch.tensor([-3.0]), kind)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        generator_loss(torch.tensor([0.0]), "wasserstein")  # type: ignore[arg-type]


def test_bce_losses_match_hand_worked_values() -> None:
    # D: -log σ(0) + ½(-log(1-σ(0)) - log(1-σ(0))) = 2 log 2; G: -log σ(0) = log 2
    zero = torch.zeros(3)
    assert discriminator_loss(zero, zero, zero, "bce").item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zero, "bce").item() == pytest.approx(math.log(2))
    # hinge: relu(1-0) + ½(relu(1+0) + relu(1+0)) = 2
    assert discriminator_loss(zero, zero, zero, "hinge").item() == pytest.approx(2.0)


def test_mismatched_texts_pair_every_item_with_another() -> None:
    texts = ["one", "two", "two", "three", "four"]
    permutation, mask = mismatched_texts(texts, torch.Generator().manual_seed(0))
    assert sorted(permutation.tolist()) == list(range(5))
    assert all(int(j) != i for i, j in enumerate(permutation))
    assert mask.tolist() == [texts[i] != texts[int(j)] for i, j in enumerate(permutation)]


def test_nearest_texts_pair_each_item_with_the_most_similar_other_text() -> None:
    texts = ["a red circle", "a red square", "a blue square", "a red circle", "a red circle above a cat"]
    pairing, mask = nearest_texts(texts, torch.Generator().manual_seed(0))
    # one word apart before two; never the same text (item 3 says item 0's); a longer text: its extra words count
    assert [texts[int(pairing[i])] for i in (0, 2, 3, 4)] == ["a red square"] * 3 + ["a red circle"] and mask.all()
    assert texts[int(pairing[1])] in ("a red circle", "a blue square")  # both one word from "a red square"
    ties = {int(nearest_texts(["a b", "a c", "a d"], torch.Generator().manual_seed(s))[0][0]) for s in range(20)}
    assert ties == {1, 2}  # equally near: drawn at random
    pairing, mask = nearest_texts(["same", "same"])
    assert not mask.any()  # nothing differs: no wrong pair counts


def test_matching_aware_penalty_is_the_gradient_norm_to_the_power() -> None:
    x = torch.ones(2, 3, requires_grad=True)
    c = torch.ones(2, 1, requires_grad=True)
    scores = (2 * x).sum(1) + c.squeeze(1)  # ∇ = (2, 2, 2, 1): norm √13
    assert matching_aware_penalty(scores, (x, c), power=2).item() == pytest.approx(13.0, rel=1e-4)


# ---------------------------------------------------------------------- training
def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize("make_data", [tiny_images, tiny_audio], ids=["image", "audio"])
def test_one_manual_step_updates_both_networks(tmp_path: Path, make_data) -> None:
    dm = make_data()
    gan = gan_for(dm, clip_grad_norm=1.0, gradient_penalty=2.0, contrastive=0.5, augment=True)
    generator, discriminator, text = _snapshot(gan.generator), _snapshot(gan.discriminator), _snapshot(gan.text_encoder)
    ema = _snapshot(gan.generator_ema)
    tiny_trainer(tmp_path, callbacks=[GeneratedSamples()]).fit(gan, dm)  # one batch: one D step and one G step
    assert _changed(generator, gan.generator) and _changed(discriminator, gan.discriminator)
    assert _changed(text, gan.text_encoder) and _changed(ema, gan.generator_ema)
    # the fixed prompts were rendered at the end of validation
    assert (tmp_path / "media" / "generated" / "epoch_000.png").stat().st_size > 0
    if dm.media == "audio":
        assert len(list((tmp_path / "media" / "generated" / "epoch_000").glob("*.wav"))) >= 1
        assert bool(gan.space.stats_ready) and gan.space.feature_std.shape == (16,)


@pytest.mark.parametrize("make_data", [tiny_images, tiny_audio], ids=["image", "audio"])
def test_d_steps_and_a_second_discriminator_scale(tmp_path: Path, make_data) -> None:
    """``d_steps 2``: over 4 batches D steps 4 times and G twice (its EMA too); ``discriminator_scales 2``: a
    second D on the samples at half the resolution trains with the first and steers the generator."""
    dm = make_data()
    gan = gan_for(dm, d_steps=2, discriminator_scales=2)
    assert gan.discriminator_half is not None
    half, ema = _snapshot(gan.discriminator_half), _snapshot(gan.generator_ema)
    tiny_trainer(tmp_path, limit_train_batches=4, limit_val_batches=0).fit(gan, dm)
    opt_g, opt_d = gan.optimizers()
    steps = [int(next(iter(o.optimizer.state.values()))["step"]) for o in (opt_g, opt_d)]
    assert steps == [2, 4]
    assert int(gan.generator_ema.n_averaged) == 2 and _changed(ema, gan.generator_ema)
    assert _changed(half, gan.discriminator_half)
    with pytest.raises(ConfigError, match="d_steps 0"):
        gan_for(dm, d_steps=0)


def test_a_non_finite_loss_stops_training_naming_the_step(tmp_path: Path) -> None:
    dm = tiny_images()

    class Poisoned(ConditionalGAN):
        def to_model(self, batch):  # noqa: ANN001, ANN202
            return super().to_model(batch) * float("nan")

    gan = Poisoned(**{k: v for k, v in gan_for(dm).hparams.items()})
    with pytest.raises(FloatingPointError, match=r"train/d_loss is not finite at step 0"):
        tiny_trainer(tmp_path).fit(gan, dm)


@pytest.mark.parametrize(("option", "flag"), [({"gradient_clip_val": 1.0}, "clip_grad_norm"),
                                              ({"accumulate_grad_batches": 2}, "batch_size")])
def test_trainer_clipping_and_accumulation_are_refused_with_the_fix(tmp_path: Path, option: dict, flag: str) -> None:
    dm = tiny_images()
    with pytest.raises(ValueError, match=flag):
        tiny_trainer(tmp_path, **option).fit(gan_for(dm), dm)


def test_audio_gan_refuses_utterance_normalized_features(tmp_path: Path) -> None:
    dm = TextAudioDataModule(embedded_options={**TINY_SPOKEN, "single_word": True}, n_mels=16, batch_size=8)
    with pytest.raises(ValueError, match="--data.normalize none"):
        tiny_trainer(tmp_path).fit(gan_for(dm), dm)


# ---------------------------------------------------------------------- pretrained text encoder
def test_a_hugging_face_text_model_can_be_the_text_encoder(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    path = tmp_path / "tiny-bert"
    BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(path)
    encoder = PretrainedTextEncoder(str(path), output_dim=8, vocab_size=50)
    c = encoder(torch.tensor([[1, 7, 9, 2, 0]]), torch.tensor([4]))
    assert c.shape == (1, 8)
    assert not any(p.requires_grad for p in encoder.model.parameters())  # frozen: only the projection learns
    assert not encoder.train().model.training
    gan = ConditionalGAN(vocab_size=50, image_size=16, text_encoder=str(path), **TINY_GAN)
    assert gan.generate({"text_tokens": torch.tensor([[1, 7, 2]]), "text_lengths": torch.tensor([3])})["image"].shape \
        == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="--data.tokenizer"):
        PretrainedTextEncoder(str(path), output_dim=8, vocab_size=500)


def test_a_frozen_pretrained_text_encoder_trains_one_step_unchanged(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel

    path = tmp_path / "tiny-bert"
    BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(path)
    dm = tiny_images()
    dm.setup("fit")  # a 27-word vocabulary: ids within the model's 50
    gan = gan_for(dm, text_encoder=str(path))
    bert, projection = _snapshot(gan.text_encoder.model), _snapshot(gan.text_encoder.proj)
    tiny_trainer(tmp_path).fit(gan, dm)
    assert not _changed(bert, gan.text_encoder.model) and _changed(projection, gan.text_encoder.proj)


# ---------------------------------------------------------------------- feature discriminator
def test_a_frozen_encoder_feature_discriminator_trains_its_head_and_passes_gradients_to_images(tmp_path: Path) -> None:
    from multimodal_kit.models.encoders import ConvImageEncoder

    encoder = ConvImageEncoder(widths=(4, 8))
    d = FeatureDiscriminator(encoder, cond_dim=16, size=16, feature_dim=12)
    images = torch.randn(3, 3, 16, 16, requires_grad=True)
    scores = d(images, torch.randn(3, 16))
    assert scores.shape == (3,) and d.features(images).shape == (3, 12)
    scores.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0  # the generator learns through it
    assert all(p.grad is None for p in encoder.parameters()) and not d.train().encoder.training

    dm = tiny_images()
    gan = gan_for(dm, feature_encoder=ConvImageEncoder(widths=(4, 8)))
    frozen, head = _snapshot(gan.feature_discriminator.encoder), _snapshot(gan.feature_discriminator.head)
    generator = _snapshot(gan.generator)
    tiny_trainer(tmp_path).fit(gan, dm)
    assert not _changed(frozen, gan.feature_discriminator.encoder)
    assert _changed(head, gan.feature_discriminator.head) and _changed(generator, gan.generator)
    with pytest.raises(ValueError, match="feature_encoder reads images"):
        gan_for(tiny_audio(), feature_encoder=ConvImageEncoder(widths=(4, 8)))


# ---------------------------------------------------------------------- audio back to sound
def test_griffin_lim_turns_log_mel_back_into_the_same_sound() -> None:
    features = LogMel(normalize="none")
    t = torch.arange(16_000) / 16_000
    chirp = 0.3 * torch.sin(2 * math.pi * (300 + 400 * t) * t) * torch.hann_window(16_000)
    original = features(chirp)
    wave = features.invert(original)
    assert wave.shape == (160 * (original.shape[0] - 1),) and np.isfinite(wave).all()
    again = features(torch.from_numpy(wave))
    # the spectral envelope survives (phase is re-estimated): per-frame log-mel profiles correlate strongly
    a, b = original[: again.shape[0]].flatten(), again.flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9
    with pytest.raises(ValueError, match="normalize none"):
        LogMel(normalize="utterance").invert(original)


# ---------------------------------------------------------------------- smaller pieces, hand-checked
def test_evaluation_noise_and_sound_of_an_item_do_not_depend_on_its_batch() -> None:
    """What makes GAN test scores reproducible and the same on any number of processes."""
    gan = ConditionalGAN(vocab_size=10, image_size=16, **TINY_GAN)
    alone, batched = gan.item_noise(["b"]), gan.item_noise(["a", "b"])
    assert torch.equal(alone[0], batched[1]) and not torch.equal(batched[0], batched[1])
    features = LogMel(normalize="none")
    clips = [features(torch.randn(8000) * 0.1), features(torch.randn(8000) * 0.3)]
    assert np.array_equal(features.invert(clips[1]), features.invert(clips[1]))  # seeded phase start
    # the data module inverts one clip at a time: a clip's sound is the same alone or batched with another
    from multimodal_kit.data.text_audio import TextAudioDataModule

    data = TextAudioDataModule(source="spoken", normalize="none")
    assert np.array_equal(data.codec.to_values(clips)[1]["array"], data.codec.to_values(clips[1:])[0]["array"])


def test_truncation_bounds_inference_noise_only() -> None:
    """BigGAN's truncation trick: evaluation noise within [-t, t], still fixed per item; training noise untouched."""
    plain = ConditionalGAN(vocab_size=10, image_size=16, **TINY_GAN)
    cut = ConditionalGAN(vocab_size=10, image_size=16, truncation=0.5, **TINY_GAN)
    ids = [f"item-{i}" for i in range(64)]
    z = cut.item_noise(ids)
    assert z.abs().max() <= 0.5 and z.std() > 0.2  # truncated, not collapsed
    assert torch.equal(z, cut.item_noise(ids)) and torch.equal(z[3], cut.item_noise(ids[3:4])[0])
    assert plain.item_noise(ids).abs().max() > 1.5  # without truncation: the plain normal
    torch.manual_seed(0)
    assert cut.noise(4096).abs().max() > 2.0  # training draws from the whole normal
    with pytest.raises(ConfigError, match="truncation 0.0: the noise bound t must be positive"):
        ConditionalGAN(vocab_size=10, image_size=16, truncation=0.0, **TINY_GAN)


def test_audio_round_trip_ends_each_clip_where_its_sound_ends() -> None:
    gan = ConditionalGAN(vocab_size=10, media="audio", n_mels=4, max_frames=32, **TINY_GAN)
    lengths = torch.tensor([20, 30])
    audio = torch.full((2, 30, 4), -5.0)  # loud frames (a real `spoken` frame averages far above -12.9)
    back = gan.from_model(gan.to_model({"audio": audio, "audio_lengths": lengths}))
    assert back["audio"].shape == (2, 32, 4)
    # the 5-frame average lets the sound reach 2 frames into the silence that follows it, no further
    assert back["audio_lengths"].tolist() == [22, 32]
    silent = gan.from_model(torch.full((1, 4, 32), -13.8155))  # standardized = raw here (mean 0, std 1)
    assert silent["audio_lengths"].tolist() == [1]


def test_ema_warms_up_before_reaching_its_decay() -> None:
    from multimodal_kit.models.gan import EMAWithWarmup

    average = EMAWithWarmup(0.999)
    # first update: decay min(0.999, 1/10) = 0.1 → 0.1·0 + 0.9·1; after 10,000 updates the decay is 0.999
    assert average(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0)).item() == pytest.approx(0.9)
    assert average(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(10_000)).item() == pytest.approx(0.001)


def test_prompt_files_without_prompts_are_refused(tmp_path: Path) -> None:
    from multimodal_kit.data.datasets import Prompts
    from multimodal_kit.data.problems import DataError

    path = tmp_path / "prompts.txt"
    path.write_text("\n  \n")
    with pytest.raises(DataError, match="no prompts"):
        Prompts(path)
    path.write_text("one\n\ntwo\n")
    assert [Prompts(path)[i]["id"] for i in range(2)] == ["prompt_000", "prompt_001"]


def test_an_evaluator_must_be_a_text_generator_checkpoint(tmp_path: Path) -> None:
    from multimodal_kit.evaluation import CycleEvaluator

    with pytest.raises(ConfigError, match="--model.evaluator"):
        CycleEvaluator(tmp_path / "missing.ckpt")
    gan = tmp_path / "gan.ckpt"
    torch.save({"hyper_parameters": {"_class_path": "multimodal_kit.methods.ConditionalGAN"},
                "datamodule_hyper_parameters": {"_class_path": "multimodal_kit.data.image_caption."
                                                              "ImageCaptionDataModule"}}, gan)
    with pytest.raises(ValueError, match="not a checkpoint of a kit text generator"):
        CycleEvaluator(gan)


def test_a_gan_fit_under_ddp_without_unused_parameter_search_is_refused_with_the_fix() -> None:
    gan = ConditionalGAN(vocab_size=10, image_size=16, **TINY_GAN)
    gan.trainer = Trainer(accelerator="cpu", strategy="ddp", devices=1, logger=False, enable_checkpointing=False)
    with pytest.raises(ConfigError, match="ddp_find_unused_parameters_true"):
        gan.setup("fit")


def test_contrastive_matching_loss_by_hand_and_repeated_texts_are_not_wrong() -> None:
    import math

    from multimodal_kit.models.gan_losses import contrastive_matching_loss, same_texts

    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    texts_emb = torch.tensor([[2.0, 0.0], [0.0, 3.0], [0.0, 1.0]])  # cosine: each matches its own sample
    # rows 0 and 1 differ; rows 1 and 2 say the same text, so for row 1 the only wrong text is row 0's
    same = same_texts(["red", "blue", "blue"])
    assert same.tolist() == [[False, False, False], [False, False, True], [False, True, False]]
    loss = contrastive_matching_loss(features, texts_emb, same, temperature=1.0)
    row0 = -math.log(math.e / (math.e + 1 + 1))  # own cos 1; rows 1, 2 cos 0
    row1 = -math.log(math.e / (math.e + 1))  # own 1; row 0 cos 0; row 2 (same text) left out
    row2 = row1
    assert float(loss) == pytest.approx((row0 + row1 + row2) / 3, rel=1e-5)
    swapped = contrastive_matching_loss(features, texts_emb[[1, 0, 2]], same, temperature=1.0)
    assert float(swapped) > float(loss)  # texts paired with the wrong samples cost more


def _write_colour_folder(root: Path, per_colour: int) -> Path:
    """An imagefolder of 16×16 images, each all red or all blue (with pixel noise), captioned by its colour."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", per_colour), ("validation", 2), ("test", 2)):
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for i in range(count):
            for colour, rgb in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
                pixels = np.clip(np.array(rgb) + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{colour}_{i}.png")
                rows.append(f'{{"file_name": "{colour}_{i}.png", "text": "{colour}"}}')
        (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return root


def _fit_two_word_gan(dm: ImageCaptionDataModule | TextAudioDataModule, tmp_path: Path) -> ConditionalGAN:
    """A tiny GAN (contrastive, cosine, fast EMA) trained 30 epochs on a two-word set: 60 steps."""
    from lightning.pytorch import seed_everything

    seed_everything(0)
    gan = gan_for(dm, contrastive=1.0, ema_decay=0.9, lr_decay="cosine",
                  optimizer_g=lambda p: torch.optim.Adam(p, lr=2e-3, betas=(0.5, 0.999)),
                  optimizer_d=lambda p: torch.optim.Adam(p, lr=2e-3, betas=(0.5, 0.999)))
    tiny_trainer(tmp_path, max_epochs=30, limit_train_batches=None, limit_val_batches=0).fit(gan, dm)
    return gan


def test_a_tiny_gan_learns_to_draw_the_colour_its_text_names(tmp_path: Path) -> None:
    """The GAN cell's can-it-learn-at-all check: after 60 steps on red/blue images, the (EMA)
    generator's images for "red" are red and for "blue" are blue."""
    from torch.utils.data import DataLoader

    dm = ImageCaptionDataModule(source=str(_write_colour_folder(tmp_path / "colours", 16)), image_size=16,
                                batch_size=16, eval_batch_size=16)
    gan = _fit_two_word_gan(dm, tmp_path)
    for optimizer in gan.trainer.optimizers:  # the cosine reached zero at the last batch, for both networks
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)

    batch = next(iter(DataLoader(dm.dataset("train"), batch_size=32, collate_fn=dm.collator())))
    gan.eval()
    images = gan.generate(batch)["image"]  # (32, 3, 16, 16)
    red_minus_blue = (images[:, 0] - images[:, 2]).mean(dim=(1, 2))  # (32,)
    asked_red = torch.tensor([text == "red" for text in batch["text"]])
    assert bool((red_minus_blue[asked_red] > 0.5).all()) and bool((red_minus_blue[~asked_red] < -0.5).all())



def test_diff_augment_shifts_and_cuts_out_each_sample_and_lets_gradients_through() -> None:
    from multimodal_kit.models.gan_augment import diff_augment

    torch.manual_seed(0)
    frames = torch.arange(1.0, 17.0).repeat(64, 2, 1).requires_grad_(True)  # (B, n_mels, T): audio-like
    shifted = diff_augment(frames, translation=0.25, cutout=0.0)
    assert shifted.shape == frames.shape
    for row in shifted[:, 0].detach():  # a shift by s: the sequence moved, zeros where it came from outside
        kept = row[row > 0]
        assert torch.equal(kept, torch.arange(kept[0].item(), kept[0].item() + len(kept)))
        assert len(kept) >= 12  # at most 4 of 16 frames shifted out
    assert len({int((row > 0).sum()) for row in shifted[:, 0].detach()}) > 1  # each sample its own shift
    shifted.sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0

    images = torch.ones(32, 3, 16, 16)
    cut = diff_augment(images, translation=0.0, cutout=0.25)
    zeros = (cut[:, 0] == 0).sum(dim=(1, 2))  # a 4×4 box, clipped at the border
    assert bool((zeros <= 16).all()) and bool((zeros > 0).all()) and zeros.max() == 16
    assert torch.equal(cut[:, 0], cut[:, 2])  # the same box in every channel


def _write_tone_folder(root: Path, per_word: int) -> Path:
    """An audiofolder of 0.3 s tones at 16 kHz: "low" at 250 Hz, "high" at 3 kHz (with a little noise)."""
    import soundfile

    rng = np.random.default_rng(0)
    t = np.arange(4800) / 16_000
    for split, count in (("train", per_word), ("validation", 2), ("test", 2)):
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for i in range(count):
            for word, hz in (("low", 250.0), ("high", 3000.0)):
                wave = 0.5 * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6)) + rng.normal(0, 0.01, t.shape)
                soundfile.write(folder / f"{word}_{i}.wav", wave.astype(np.float32), 16_000)
                rows.append(f'{{"file_name": "{word}_{i}.wav", "text": "{word}"}}')
        (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return root


def test_a_tiny_gan_learns_to_voice_the_pitch_its_text_names(tmp_path: Path) -> None:
    """The text → audio cell's can-it-learn-at-all check: after 60 steps on low and high tones, the generated
    log-mel spectrograms for "low" are loudest in the low bands and for "high" in the high bands."""
    from torch.utils.data import DataLoader

    dm = TextAudioDataModule(source=str(_write_tone_folder(tmp_path / "tones", 16)), normalize="none", n_mels=16,
                             batch_size=16, eval_batch_size=16)
    gan = _fit_two_word_gan(dm, tmp_path)

    batch = next(iter(DataLoader(dm.dataset("train"), batch_size=32, collate_fn=dm.collator())))
    gan.eval()
    generated = gan.generate(batch)
    mel = generated["audio"]  # (32, frames, 16) raw log-mel
    frames = torch.arange(mel.shape[1])[None, :] < generated["audio_lengths"][:, None]  # (32, frames)
    per_band = (mel * frames[..., None]).sum(1) / frames.sum(1, keepdim=True)  # (32, 16): mean over its frames
    low_minus_high = per_band[:, :8].mean(1) - per_band[:, 8:].mean(1)  # (32,)
    asked_low = torch.tensor([text == "low" for text in batch["text"]])
    real = dm.collator()([dm.dataset("train")[i] for i in range(2)])["audio"]  # (2, frames, 16): "low", "high"
    margin = float((real[0, :, :8].mean() - real[0, :, 8:].mean()) - (real[1, :, :8].mean() - real[1, :, 8:].mean()))
    assert margin > 2  # the real tones differ by that much (log-mel units)
    # every "low" clip leans to the low bands by more than every "high" one, by a fifth of the real tones' gap
    assert float(low_minus_high[asked_low].min()) > float(low_minus_high[~asked_low].max()) + margin / 5


def test_the_cycle_scores_follow_the_text_the_evaluator_writes(tmp_path: Path) -> None:
    """An audio *captioner* judging generated audio is scored by BLEU (what it writes), not WER (audio's default);
    without a text kind in the checkpoint, the medium's default decides."""
    from multimodal_kit.methods.generated_media import cycle_monitor

    captioner, recognizer = tmp_path / "captioner.ckpt", tmp_path / "recognizer.ckpt"
    torch.save({"hyper_parameters": {"text_kind": "caption", "media": "audio"}}, captioner)
    torch.save({"hyper_parameters": {"media": "audio"}}, recognizer)
    assert cycle_monitor("audio", str(captioner)) == ("val/cycle_bleu4", "max")
    assert cycle_monitor("audio", str(recognizer)) == ("val/cycle_wer", "min")
    assert cycle_monitor("image") == ("val/cycle_bleu4", "max")


def test_the_geometric_reader_scores_generated_shapes_and_picks_the_checkpoint(tmp_path: Path) -> None:
    """With ``geometric_reader`` the GAN reports what the reader sees in its images, beside the real images' reading
    (the ceiling), and keeps the checkpoint with the best validation exact match."""
    import json

    from multimodal_kit.cli import main

    repo = Path(__file__).resolve().parents[2]
    run, results = tmp_path / "run", tmp_path / "test.json"
    tiny = ["--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "32",
            "--data.init_args.eval_batch_size", "32", *[a for k, v in TINY_GAN.items()
                                                        for a in (f"--model.init_args.{k}", str(v))]]
    main(["fit", "-c", str(repo / "experiments" / "gan_image_caption.yaml"), "--run_dir", str(run), *tiny,
          "--model.init_args.geometric_reader", "true", "--trainer.max_epochs", "1", "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false", "--trainer.callbacks", "[]"])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    callbacks = torch.load(best, weights_only=False)["callbacks"]
    assert any("val/read_exact_match" in k for k in callbacks), "the best checkpoint is chosen by the reader"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false"])
    metrics = json.loads(results.read_text())
    names = ("exact_match", "colour", "shape", "size", "relation", "count")
    assert {f"test/read_{n}" for n in names} | {f"test/real_read_{n}" for n in names} <= set(metrics)
    assert metrics["test/real_read_exact_match"] == 1.0  # the real 64×64 test scenes read back exactly
    assert metrics["test/read_exact_match"] < 0.5  # one tiny epoch draws no scene right


def test_the_geometric_reader_is_refused_for_audio(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from multimodal_kit.cli import main

    repo = Path(__file__).resolve().parents[2]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(repo / "experiments" / "gan_text_audio.yaml"), "--run_dir", str(tmp_path / "run"),
              "--data.init_args.embedded_options", '{"num_train": 16, "num_validation": 8, "num_test": 8}',
              "--model.init_args.geometric_reader", "true", "--trainer.fast_dev_run", "true",
              "--trainer.logger", "false"])
    assert exit_info.value.code == 2 and "geometric_reader reads images" in capsys.readouterr().err


def test_r_precision_counts_a_hit_only_when_the_true_text_ranks_first() -> None:
    from multimodal_kit.evaluation import r_precision_hits

    texts = torch.eye(3)  # three texts, orthogonal embeddings
    media = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    hits = r_precision_hits(media, texts, true=[0, 0, 2], candidates=[[1, 2], [1, 2], [0]])
    assert hits.tolist() == [True, False, True]  # item 1 is nearer text 1 than its true text 0
