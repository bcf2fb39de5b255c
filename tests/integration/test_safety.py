"""Safe loading: checkpoints and tokenizers load without running code; no credential is ever written to the run's
configs, logs or W&B files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from multimodal_kit.cli import main
from multimodal_kit.data.text import load_tokenizer, train_tokenizer
from multimodal_kit.errors import ConfigError
from tests.conftest import TINY_SHAPES

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Pickles as a call that creates ``marker`` when unpickled: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.makedirs, (str(self.marker),))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": Payload(marker)}}, evil)
    with pytest.raises(SystemExit) as exit_:
        main(["test", "--ckpt_path", str(evil)])
    assert exit_.value.code == 2 and not marker.exists()
    assert "holds objects other than tensors and plain data" in capsys.readouterr().err


def test_tokenizer_code_runs_only_when_trusted(tmp_path: Path) -> None:
    """A hub tokenizer may ship Python (``auto_map``); loading it must not import that file."""
    folder = tmp_path / "tok"
    train_tokenizer(["a b c"]).save_pretrained(str(folder))
    marker = tmp_path / "pwned"
    (folder / "evil_tokenizer.py").write_text(f"import os\nos.makedirs({str(marker)!r})\n"
                                              "from transformers import PreTrainedTokenizerFast as EvilTokenizer\n")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "evil_tokenizer.EvilTokenizer"]}
    config["tokenizer_class"] = "EvilTokenizer"  # no class of the library: only the shipped code could load it
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="--data.trust_remote_code true"):
        load_tokenizer(str(folder))
    assert not marker.exists()


def test_no_credential_reaches_the_run_directory(tmp_path: Path, monkeypatch) -> None:
    secrets = {"WANDB_API_KEY": "0123456789abcdef" * 2 + "fedcba98", "HF_TOKEN": "hf_SecretTokenForTheTest123"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / "seq2seq_image_caption.yaml"), "--run_dir", str(run),
          "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16", "--model.init_args.encoder",
          '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}',
          "--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "32",
          "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"])
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.match("*.wandb") for p in files) and (run / "config.yaml").is_file()  # W&B did log
    for path in files:
        data = path.read_bytes()
        for name, value in secrets.items():
            assert value.encode() not in data, f"{name} written to {path}"
