"""The SLURM recipe: the sbatch script's contract, and a job of two tasks with SLURM's environment simulated on
CPU (gloo) — both ranks agree on one run directory without ``--run_dir``, the warning signal writes an hpc
checkpoint and requeues the job (a stand-in ``scontrol`` records it), and the requeued job resumes from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_SHAPES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "experiments" / "presets" / "slurm.sbatch"


def test_the_sbatch_script_asks_for_the_warning_signal_and_one_task_per_gpu() -> None:
    text = SCRIPT.read_text()
    directives = dict(line.removeprefix("#SBATCH --").split("=", 1) for line in text.splitlines()
                      if line.startswith("#SBATCH --") and "=" in line)
    assert directives["signal"] == "SIGUSR1@90" and "#SBATCH --requeue" in text
    assert directives["gres"] == f"gpu:{directives['ntasks-per-node']}"  # one task per GPU
    assert 'srun .venv/bin/mmkit fit -c "$EXPERIMENT" -c experiments/presets/ddp.yaml' in text
    assert '--trainer.devices "$SLURM_NTASKS_PER_NODE"' in text and '"$SLURM_JOB_NUM_NODES"' in text


def launch(tmp_path: Path, *extra: str) -> list[subprocess.CompletedProcess]:
    """Both tasks of a one-node, two-task SLURM job, as srun would start them."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    scontrol = fake_bin / "scontrol"
    scontrol.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.log'}\n")
    scontrol.chmod(0o755)
    base = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "PYTHONPATH": str(REPO),
            "WANDB_MODE": "offline", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "mmkit", "SLURM_NTASKS": "2",
            "SLURM_NTASKS_PER_NODE": "2", "SLURM_JOB_NUM_NODES": "1", "SLURM_NNODES": "1", "SLURM_NODEID": "0",
            "SLURM_NODELIST": "127.0.0.1"}
    command = [sys.executable, "-m", "multimodal_kit", "fit", "-c",
               str(REPO / "experiments" / "seq2seq_image_caption.yaml"), "-c",
               str(REPO / "experiments" / "presets" / "ddp.yaml"), "--trainer.accelerator", "cpu",
               "--trainer.devices", "2", "--trainer.num_nodes", "1", "--data.init_args.embedded_options",
               json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "16", "--model.init_args.embed_dim", "16",
               "--model.init_args.hidden_dim", "16", "--trainer.max_epochs", "3", "--trainer.logger", "false",
               "--trainer.enable_progress_bar", "false", *extra]
    tasks = [subprocess.Popen(command, cwd=tmp_path, env={**base, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    return [subprocess.CompletedProcess(task.args, task.wait(timeout=600), task.stdout.read()) for task in tasks]


@pytest.mark.slow
def test_a_simulated_slurm_job_shares_one_run_and_requeues_and_resumes_on_the_signal(tmp_path: Path) -> None:
    signal_at = tmp_path / "signal.yaml"
    signal_at.write_text("trainer:\n  callbacks:\n    - class_path: tests.helpers.SignalAtStep\n"
                         "      init_args: {step: 4, signum: 10}\n")  # SIGUSR1, as --signal=SIGUSR1@90 sends it
    first = launch(tmp_path, "-c", str(signal_at))
    assert [task.returncode for task in first] == [0, 0], first[0].stdout[-3000:]
    (run,) = (tmp_path / "runs").iterdir()  # both ranks, one directory
    assert run.name == "Seq2Seq-ImageCaption-slurm4242"
    assert (run / "hpc_ckpt_1.ckpt").is_file()
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]  # rank 0 only, once

    second = launch(tmp_path)  # the requeued job: same id, no signal this time
    assert [task.returncode for task in second] == [0, 0], second[0].stdout[-3000:]
    assert f"Restoring states from the checkpoint path at {run / 'hpc_ckpt_1.ckpt'}" in second[0].stdout
