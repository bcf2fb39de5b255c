"""Test data the tests write themselves: imagefolder directories and hub-style dataset repositories."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback
from PIL import Image

from multimodal_kit.data.embedded.shapes import SHAPES, ShapesConfig, sample_scene, scene_captions

#: CLI flags for a GAN of a few thousand parameters
TINY_GAN_ARGS = ["--model.init_args.noise_dim", "8", "--model.init_args.cond_dim", "16",
                 "--model.init_args.generator_width", "4", "--model.init_args.discriminator_width", "4"]
#: ``mmkit fit`` flags of a tiny recognizer whose steps draw random numbers everywhere: shuffled, length-grouped
#: batches, SpecAugment masks, dropout; on TINY_SPOKEN (64 utterances) in batches of 8 = 8 steps an epoch
TINY_RECOGNIZER = ["-c", str(Path(__file__).resolve().parents[1] / "experiments" / "attention_text_audio.yaml"),
                   "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                   "--model.init_args.attention_dim", "16", "--model.init_args.encoder",
                   '{"class_path": "multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder", '
                   '"init_args": {"conv_channels": 4, "hidden_dim": 16}}',
                   "--data.init_args.embedded_options", json.dumps({"num_train": 64, "num_validation": 16,
                                                                    "num_test": 16}),
                   "--data.init_args.batch_size", "8", "--data.init_args.eval_batch_size", "16",
                   "--data.init_args.sort_by_length", "true", "--data.init_args.spec_augment",
                   '{"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 0.05}',
                   "--trainer.deterministic", "true", "--trainer.enable_progress_bar", "false"]
#: CLI flags for two CPU processes under DDP (gloo), spawned
DDP_SPAWN_CPU = ["--trainer.accelerator", "cpu", "--trainer.strategy", "ddp_spawn", "--trainer.devices", "2"]


def write_imagefolder(root: Path, splits: dict[str, int], fmt: str = "jsonl", with_captions: bool = True) -> Path:
    """A HF ``imagefolder`` directory of shapes scenes: ``root/<split>/*.png`` + ``metadata.<fmt>``."""
    config = ShapesConfig()
    for split, count in splits.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(count):
            pixels, objects, relation = sample_scene(config, "train" if split == "train" else "test", i)
            name = f"{split}_{i:03d}_{SHAPES.index(objects[0].shape)}.png"
            Image.fromarray(pixels).save(folder / name)
            captions = scene_captions(objects, relation)
            row = {"file_name": name, "text": captions[0]}
            if with_captions:
                row["captions"] = captions
            rows.append(row)
        if fmt == "jsonl":
            (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        else:
            lines = ["file_name,text"] + [f"{r['file_name']},{r['text']}" for r in rows]
            (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def write_hub_style_repo(root: Path, splits: dict[str, int]) -> Path:
    """A dataset repository as it lies on the hub: parquet shards under ``data/``, own column and split names
    (``img``, ``caption``, ``refs``; ``dev`` instead of ``validation``)."""
    import datasets

    config = ShapesConfig()
    (root / "data").mkdir(parents=True, exist_ok=True)
    features = datasets.Features({"img": datasets.Image(), "caption": datasets.Value("string"),
                                  "refs": [datasets.Value("string")], "key": datasets.Value("string")})
    for split, count in splits.items():
        rows: dict[str, list] = {"img": [], "caption": [], "refs": [], "key": []}
        for i in range(count):
            pixels, objects, relation = sample_scene(config, "train", i)
            captions = scene_captions(objects, relation)
            rows["img"].append(Image.fromarray(pixels))
            rows["caption"].append(captions[0])
            rows["refs"].append(captions)
            rows["key"].append(f"{split}-{i}")
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(root / "data" / f"{split}-00000.parquet"))
    return root


class UniformAttention(torch.nn.Module):
    """A user's own attention module, swapped in by class path: equal weight on every valid position."""

    def __init__(self, query_dim: int, key_dim: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return keys

    def forward(self, query, keys, prepared, mask):
        weights = mask.float() / mask.float().sum(1, keepdim=True)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights


def write_audiofolder(root: Path, splits: dict[str, int], fmt: str = "jsonl", text_column: str = "text",
                      sample_rate: int = 16_000, extension: str = ".wav") -> Path:
    """A HF ``audiofolder`` directory of eSpeak NG utterances: ``root/<split>/*.wav`` + ``metadata.<fmt>``."""
    import soundfile

    from multimodal_kit.data.embedded.espeak import ESpeak
    from multimodal_kit.data.embedded.spoken import SpokenConfig, sample_utterance, voices

    config = SpokenConfig(sample_rate=sample_rate, max_words=3)
    train_voices = voices(config)["train"]
    for split, count in splits.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(count):
            with ESpeak.fresh() as engine:
                utterance = sample_utterance(config, "train", i + (0 if split == "train" else 1000), train_voices,
                                             engine)
            name = f"{split}_{i:03d}{extension}"
            wave, rate = soundfile.read(io.BytesIO(utterance["audio"]), dtype="float32")
            soundfile.write(folder / name, wave, rate)
            rows.append({"file_name": name, text_column: utterance["text"]})
        if fmt == "jsonl":
            (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        else:
            lines = [f"file_name,{text_column}"] + [f"{r['file_name']},{r[text_column]}" for r in rows]
            (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def write_hub_style_audio_repo(root: Path, splits: dict[str, int]) -> Path:
    """A speech dataset repository as it lies on the hub: parquet shards under ``data/`` with an ``Audio`` column
    of embedded FLAC bytes and its own column names (``speech``, ``sentence``, ``key``)."""
    import datasets

    from multimodal_kit.data.embedded.espeak import ESpeak
    from multimodal_kit.data.embedded.spoken import SpokenConfig, sample_utterance, voices

    config = SpokenConfig(max_words=3)
    train_voices = voices(config)["train"]
    (root / "data").mkdir(parents=True, exist_ok=True)
    blob = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    for split, count in splits.items():
        rows: dict[str, list] = {"speech": [], "sentence": [], "key": []}
        for i in range(count):
            with ESpeak.fresh() as engine:
                utterance = sample_utterance(config, "train", i, train_voices, engine)
            rows["speech"].append({"bytes": utterance["audio"], "path": f"{split}-{i}.flac"})
            rows["sentence"].append(utterance["text"])
            rows["key"].append(f"{split}-{i}")
        table = datasets.Dataset.from_dict(rows, features=datasets.Features(
            {"speech": blob, "sentence": datasets.Value("string"), "key": datasets.Value("string")}))
        table = table.cast_column("speech", datasets.Audio(sampling_rate=16_000))  # a cast needs no torchcodec
        table.to_parquet(str(root / "data" / f"{split}-00000.parquet"))
    return root


class SignalAtStep(Callback):
    """Sends this process ``signum`` (SIGTERM by default) after training step ``step``, as a cluster's time limit
    or a user's Ctrl-C would, at a step the test knows."""

    def __init__(self, step: int, signum: int = 15) -> None:
        self.step = step
        self.signum = signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


# ---------------------------------------------------------------------- tiny pretrained models, saved locally
TINY_VIT = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


def save_vit(path: Path) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    ViTModel(ViTConfig(image_size=32, patch_size=8, **TINY_VIT)).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.4, 0.4],
                      image_std=[0.2, 0.2, 0.2]).save_pretrained(path)
    return path


def save_resnet(path: Path) -> Path:  # no preprocessor_config.json: ImageNet statistics
    from transformers import ResNetConfig, ResNetModel

    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).save_pretrained(path)
    return path


def save_clip(path: Path) -> Path:  # a two-tower checkpoint: the vision tower is loaded alone
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    CLIPModel(CLIPConfig(text_config={**TINY_VIT, "vocab_size": 50}, vision_config={
        **TINY_VIT, "image_size": 32, "patch_size": 8}, projection_dim=8)).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def save_wav2vec2(path: Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    Wav2Vec2Model(Wav2Vec2Config(**TINY_VIT, conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2),
                                 num_feat_extract_layers=2, num_conv_pos_embeddings=16,
                                 num_conv_pos_embedding_groups=2)).save_pretrained(path)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(path)
    return path


def save_whisper(path: Path) -> Path:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    WhisperModel(WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=60,
                               num_mel_bins=80, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                               decoder_start_token_id=1)).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    return path


def assert_wandb_logged(offline_run: Path, *keys: bytes) -> None:
    """Each of ``keys`` (metric and config names, which appear verbatim) is in the offline W&B run's binary log;
    W&B's service process may still be flushing the file after ``finish()``, so this waits up to 30 s."""
    records = next(offline_run.glob("run-*.wandb"))
    deadline = time.monotonic() + 30
    while not all(k in records.read_bytes() for k in keys) and time.monotonic() < deadline:
        time.sleep(0.5)
    logged = records.read_bytes()
    for key in keys:
        assert key in logged, f"{key!r} not in {records}"


def save_gpt2(path: Path, llama: bool = False, width: int = 32, layers: int = 2, extra_rows: int = 0,
              pad_is_eos: bool = False) -> Path:
    """A tiny random causal LM (GPT-2, or a Llama-like one without cross-attention blocks) and its own byte-level
    BPE tokenizer, trained on shapes captions and spoken words (BOS = EOS = <|endoftext|>, no PAD: as GPT-2;
    ``pad_is_eos``: PAD = EOS, as many LM tokenizers have it); ``extra_rows`` embedding rows past the tokenizer's
    tokens (as Qwen's padded vocabulary)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from tokenizers import decoders as tok_decoders
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    from multimodal_kit.data.embedded.spoken import VOCABULARY

    config = ShapesConfig(num_train=200)
    texts = [c for i in range(200) for c in scene_captions(*sample_scene(config, "train", i)[1:])]
    texts += [" ".join(VOCABULARY)] * 5
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = tok_decoders.ByteLevel()
    backend.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>",
                                        eos_token="<|endoftext|>", pad_token="<|endoftext|>" if pad_is_eos else None)
    tokenizer.save_pretrained(path)
    eos, rows = tokenizer.eos_token_id, len(tokenizer) + extra_rows
    if llama:
        LlamaForCausalLM(LlamaConfig(vocab_size=rows, hidden_size=width, intermediate_size=2 * width,
                                     num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                                     max_position_embeddings=128, bos_token_id=eos, eos_token_id=eos)).save_pretrained(path)
    else:
        GPT2LMHeadModel(GPT2Config(vocab_size=rows, n_layer=layers, n_embd=width, n_head=2, n_positions=128,
                                   initializer_range=0.3,  # weights large enough to make peaked predictions
                                   bos_token_id=eos, eos_token_id=eos)).save_pretrained(path)
    return path


def save_encoder_run(path: Path, encoder: torch.nn.Module, spec: dict | None) -> Path:
    """A checkpoint as Lightning writes one: hyperparameters and the whole model's state dict."""
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()} | {"decoder.weight": torch.zeros(2)}
    torch.save({"hyper_parameters": {"media": "image", "n_mels": 64, "encoder": spec}, "state_dict": state}, path)
    return path


class FailRankAtStep(Callback):
    """Rank ``rank`` raises (``how: raise``) or dies at once (``how: kill``, SIGKILL) after training step ``step``:
    a process lost mid-epoch under DDP."""

    def __init__(self, step: int, rank: int = 1, how: str = "raise") -> None:
        self.step, self.rank, self.how = step, rank, how

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            if self.how == "kill":
                os.kill(os.getpid(), 9)
            raise RuntimeError(f"injected fault on rank {self.rank} after step {self.step}")


class FullDiskAfterSaves(Callback):
    """In every process of the job (spawned workers too, where a test's monkeypatch does not reach), Lightning's
    checkpoint write raises ``ENOSPC`` after the first ``saves`` writes: a disk that fills up mid-fit."""

    def __init__(self, saves: int = 2) -> None:
        self.saves = saves

    def setup(self, trainer, pl_module, stage: str) -> None:  # noqa: ANN001
        import errno

        from lightning.fabric.plugins.io import torch_io

        real_save, calls = torch_io._atomic_save, []

        def filling_save(checkpoint: dict, path: str) -> None:
            calls.append(path)
            if len(calls) > self.saves:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_save(checkpoint, path)

        torch_io._atomic_save = filling_save


class CrashBeforeRenameAfterSaves(Callback):
    """The process dies (SIGKILL: a power cut, the OOM killer) inside Lightning's checkpoint write after the first
    ``saves`` writes: the next checkpoint's bytes are in fsspec's temporary file, not yet renamed onto its name."""

    def __init__(self, saves: int = 2) -> None:
        self.saves = saves

    def setup(self, trainer, pl_module, stage: str) -> None:  # noqa: ANN001
        import signal

        from fsspec.implementations.local import LocalFileOpener

        real_commit, calls = LocalFileOpener.commit, []

        def dying_commit(opener: LocalFileOpener) -> None:
            calls.append(opener.path)
            if len(calls) > self.saves:
                os.kill(os.getpid(), signal.SIGKILL)
            real_commit(opener)

        LocalFileOpener.commit = dying_commit
