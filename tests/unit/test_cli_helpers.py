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
