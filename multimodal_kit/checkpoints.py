"""Read what a checkpoint carries besides weights: the model and data configuration and the tokenizer.

This is what lets ``mmkit test|predict --ckpt_path CKPT`` run without the original config file.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch

from multimodal_kit.data.text import tokenizer_from_dict
from multimodal_kit.errors import ConfigError
from multimodal_kit.links import LINKED_MODEL_ARGS
from multimodal_kit.utils import cache_root


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint as plain data, never executing code (``weights_only=True``); ``mmap``: map the tensors
    instead of reading them (a cheap check that the file is whole). A file that is no readable checkpoint is a
    :class:`ConfigError` naming it, what it looks like and what to do."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        if _looks_like_text(Path(path)):
            raise unreadable_checkpoint(path, "a text file, not a checkpoint") from None
        raise ConfigError(f"{path}: holds objects other than tensors and plain data, which could run code when "
                          "loaded; the kit loads checkpoints with torch.load(weights_only=True) only. Use a "
                          f"checkpoint written by the kit. ({str(error).splitlines()[0]})") from error
    except (RuntimeError, EOFError, IndexError, KeyError, ValueError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise ConfigError(f"{path}: no such checkpoint file.") from None
        if isinstance(error, PermissionError):  # whole, perhaps, but not this user's to read
            raise ConfigError(f"{path}: not a readable checkpoint — permission denied for this user. Give it read "
                              f"access (chmod u+r {path}) or copy it where you can read it.") from None
        size = Path(path).stat().st_size if Path(path).is_file() else 0
        what = ("empty (0 bytes)" if size == 0 else "a text file, not a checkpoint" if _looks_like_text(Path(path))
                else f"cut short or damaged ({size:,} bytes; {(str(error) or type(error).__name__).split('. ')[0]})")
        raise unreadable_checkpoint(path, what) from None


def unreadable_checkpoint(path: str | Path, what: str) -> ConfigError:
    return ConfigError(f"{path}: not a readable checkpoint — {what}. An interrupted copy or a full disk leaves such "
                       "files; use another checkpoint of the run (its checkpoints/ folder), or --ckpt_path last, "
                       "which skips a damaged newest file.")


def _looks_like_text(path: Path) -> bool:
    """Whether a file's first bytes are printable text (a checkpoint is a zip archive: ``PK``)."""
    try:
        head = path.read_bytes()[:512]
    except OSError:
        return False
    return bool(head) and not head.startswith(b"PK") and all(b in b"\t\n\r" or 32 <= b < 127 for b in head)


def tokenizer_dir(checkpoint: dict[str, Any], ckpt_path: Path) -> Path | None:
    """A directory holding the checkpoint's tokenizer: the run's ``tokenizer/`` when the checkpoint still sits in
    its run directory with an identical tokenizer, else a copy extracted into the cache."""
    state = checkpoint.get("tokenizer")
    if state is None:
        return None
    tokenizer = tokenizer_from_dict(state)
    beside = ckpt_path.resolve().parent.parent / "tokenizer"
    if (beside / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        if AutoTokenizer.from_pretrained(str(beside), trust_remote_code=False).backend_tokenizer.to_str() == state["json"]:
            return beside
    target = cache_root() / "tokenizers" / hashlib.sha1(state["json"].encode()).hexdigest()[:16]
    if not (target / "tokenizer.json").is_file():
        tokenizer.save_pretrained(str(target))
    return target


#: classes that moved since a checkpoint could name them (0.1.0, before the task contract: the tasks lived among the
#: method families), old import path → new
MOVED_CLASSES = {
    "multimodal_kit.methods.image_qa.ImageQuestionAnswering": "multimodal_kit.tasks.image_qa.ImageQuestionAnswering",
    "multimodal_kit.methods.speech_synthesis.AttentionSpeechSynthesis":
        "multimodal_kit.tasks.speech_synthesis.AttentionSpeechSynthesis",
    "multimodal_kit.methods.speech_synthesis.Seq2SeqSpeechSynthesis":
        "multimodal_kit.tasks.speech_synthesis.Seq2SeqSpeechSynthesis",
}


def class_spec(hparams: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Hyperparameters saved through the CLI → ``{"class_path", "init_args"}`` (``None`` if they name no class),
    without the arguments in ``drop``."""
    hparams = dict(hparams)
    class_path = hparams.pop("_class_path", None)
    hparams.pop("_instantiator", None)
    if class_path is None:
        return None
    class_path = MOVED_CLASSES.get(class_path, class_path)
    return {"class_path": class_path, "init_args": {k: v for k, v in hparams.items() if k not in drop}}


def checkpoint_config(ckpt_path: str | Path) -> dict[str, Any]:
    """The ``model`` and ``data`` sections a checkpoint written through the CLI implies, tokenizer included."""
    path = Path(ckpt_path)
    checkpoint = load_checkpoint(path, mmap=True)  # the tensors are not read, only mapped
    config: dict[str, Any] = {}
    model = class_spec(checkpoint.get("hyper_parameters", {}), drop=LINKED_MODEL_ARGS)
    if model is not None:
        config["model"] = model
    data = class_spec(checkpoint.get("datamodule_hyper_parameters", {}))
    if data is not None:
        directory = tokenizer_dir(checkpoint, path)
        if directory is not None:
            data["init_args"]["tokenizer"] = str(directory)
        if checkpoint.get("label_classes"):  # the classes the method learnt, in its class-index order
            data["init_args"]["label_classes"] = checkpoint["label_classes"]
        config["data"] = data
    return config
