import pytest

from multimodal_kit.run_logging import wandb_has_credentials


def test_wandb_credentials_from_env_or_netrc(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert not wandb_has_credentials()  # no file
    netrc.write_text("machine example.org login user password secret\n")
    netrc.chmod(0o600)
    assert not wandb_has_credentials()
    netrc.write_text("machine api.wandb.ai login user password 0123456789abcdef\n")
    assert wandb_has_credentials()
    netrc.unlink()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_has_credentials()


def test_a_spawned_rank_s_error_is_told_whole() -> None:
    from torch.multiprocessing.spawn import ProcessRaisedException

    from multimodal_kit.cli_errors import lost_process

    traceback = ("\n\n-- Process 0 terminated with the following error:\nTraceback (most recent call last):\n"
                 '  File "x.py", line 3, in f\n    raise ConfigError(message)\n'
                 "multimodal_kit.errors.ConfigError: could not write the checkpoint /r/last.ckpt: No space left on "
                 "device.\nThe earlier checkpoints are kept; resume with --ckpt_path last.\n")
    said = lost_process(ProcessRaisedException(traceback, 0, 123), "/r")
    assert said.startswith("rank 0 of the DDP job failed (could not write the checkpoint /r/last.ckpt: No space "
                           "left on device. The earlier checkpoints are kept; resume with --ckpt_path last.)")
    chained = ("Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\n\nThe above exception was "
               "the direct cause of the following exception:\n\nTraceback (most recent call last):\n  File \"b.py\", "
               "line 2\nRuntimeError: injected fault on rank 1\n")
    assert "(RuntimeError: injected fault on rank 1)" in lost_process(ProcessRaisedException(chained, 1, 7), None)
