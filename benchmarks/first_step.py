"""Benchmark: time from ``mmkit fit`` to the first training step on a real-sized local image set.

Generates an ``imagefolder`` of ``--images`` JPEGs at 256 px (``shapes`` scenes upscaled, with their captions in
``metadata.jsonl``; kept under ``benchmarks/out/first_step/`` for later runs), then times ``mmkit fit`` of
``experiments/attention_image_caption.yaml`` on it, as a user runs it (a fresh process each), with
``--data.init_args.image_size 224`` (CLIP's size) and ``--data.init_args.preload false`` (what a split over 2 GiB
gets by itself), so the media check is what runs before the first step; 10 % of the images are carved for
validation and checked too:

- *serial check* (``--data.init_args.check_workers 0``, the kit before the parallel check): every image decoded
  one after another in the main process;
- *parallel check, first run*: decoded in loader workers (the default: every core of the machine);
- *cached check, second run*: the same command again; the check's outcome is read back, nothing decoded;
- *no media check* (``check_media false``) and *importing the CLI alone*: the floor under every row.

Each check variant starts with an empty kit cache (``$MMKIT_CACHE``) except the second run, which reuses the first's.
The kit reads a local folder's metadata itself (no ``datasets`` build step to warm up). Prints a table and writes
its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, record_results  # noqa: E402

SECTION = "Time to the first training step on a real-sized image folder — `make bench-first-step`"
OUT = ROOT / "benchmarks" / "out" / "first_step"


def write_folder(root: Path, images: int, size: int) -> Path:
    """``root/train/*.jpg`` and ``metadata.jsonl``: ``images`` shapes scenes at ``size`` px, with captions
    (skipped when a complete folder of that size is there already)."""
    from PIL import Image
    from tqdm.auto import tqdm

    from multimodal_kit.data.embedded.shapes import ShapesConfig, sample_scene, scene_captions

    folder, done = root / "train", root / f"complete-{images}-{size}"
    if done.is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    folder.mkdir(parents=True)
    config = ShapesConfig(num_train=images)
    with (folder / "metadata.jsonl").open("w") as metadata:
        for i in tqdm(range(images), desc="writing JPEGs", unit="image"):
            pixels, objects, relation = sample_scene(config, "train", i)
            name = f"{i:06d}.jpg"
            Image.fromarray(pixels).resize((size, size), Image.BICUBIC).save(folder / name, quality=90)
            captions = scene_captions(objects, relation)
            metadata.write(json.dumps({"file_name": name, "text": captions[0], "captions": captions}) + "\n")
    done.write_text("")
    return root


def time_fit(folder: Path, cache: Path, hf_cache: Path, *extra: str) -> float:
    """Seconds from starting ``mmkit fit`` (a fresh process) to its first training step."""
    stamp = Path(tempfile.mkdtemp()) / "first_step"
    clock = stamp.with_name("clock.yaml")
    clock.write_text(json.dumps({"trainer": {"callbacks": [
        {"class_path": "benchmarks.timing.FirstStepClock", "init_args": {"path": str(stamp)}}]}}))
    env = {**os.environ, "MMKIT_CACHE": str(cache), "HF_DATASETS_CACHE": str(hf_cache), "WANDB_MODE": "disabled",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "multimodal_kit", "fit", "-c", "experiments/attention_image_caption.yaml",
               "-c", str(clock), "--data.init_args.source", str(folder), "--data.init_args.image_size", "224",
               "--data.init_args.preload", "false",
               "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0", "--trainer.logger", "false",
               "--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false",
               "--run_dir", str(stamp.parent / "run"), *extra]
    start = time.time()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = float(stamp.read_text()) - start
    shutil.rmtree(stamp.parent, ignore_errors=True)
    return seconds


def time_imports() -> float:
    """Seconds a fresh process takes to import the CLI (Lightning, torch, transformers, datasets …): the floor of
    every row."""
    start = time.time()
    subprocess.run([sys.executable, "-c", "import multimodal_kit.cli"], cwd=ROOT, check=True)
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=256, help="the JPEGs' side in pixels")
    parser.add_argument("--quick", action="store_true", help="a plumbing check: 1,200 images, no RESULTS.md")
    args = parser.parse_args()
    images = 1_200 if args.quick else args.images
    import torch

    from multimodal_kit.data.loaders import usable_cpus

    folder = write_folder(OUT / f"imagefolder-{images}", images, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        hf_cache = work / "hf"
        rows = {}
        rows["serial check (check_workers 0)"] = time_fit(folder, work / "serial", hf_cache,
                                                          "--data.init_args.check_workers", "0")
        rows["parallel check, first run"] = time_fit(folder, work / "parallel", hf_cache)
        rows["cached check, second run"] = time_fit(folder, work / "parallel", hf_cache)
        rows["no media check (check_media false)"] = time_fit(folder, work / "none", hf_cache,
                                                              "--data.init_args.check_media", "false")
        rows["importing the CLI alone (no data, no model)"] = time_imports()
    for name, seconds in rows.items():
        print(f"{name}: {seconds:.1f} s", flush=True)
    serial, parallel = rows["serial check (check_workers 0)"], rows["parallel check, first run"]
    cached = rows["cached check, second run"]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {usable_cpus()} CPU cores ({platform.machine()}), torch "
             f"{torch.__version__}: `mmkit fit -c experiments/attention_image_caption.yaml --data.init_args.source "
             "<folder> --data.init_args.image_size 224 --data.init_args.preload false` on an imagefolder of "
             f"{images:,} JPEGs at {args.size} px "
             "(shapes scenes upscaled; 10 % carved for validation, every image checked), each run a fresh process "
             "timed from its start to the first training step. Each check row starts from an empty kit cache, "
             "except the second run, which finds the first's.", "",
             "| run | seconds to the first step |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in rows.items()]
    floor, imports = rows["no media check (check_media false)"], rows["importing the CLI alone (no data, no model)"]
    lines += ["", f"Parallel against serial: {serial / parallel:.2f}× faster; the cached second run takes "
              f"{cached:.1f} s, {100 * cached / parallel:.0f} % of the first (target: ≤ 10 s or ≤ 5 %), against "
              f"{floor:.1f} s with no media check at all, of which {imports:.1f} s is importing the CLI (Lightning, "
              "torch, transformers, datasets). Command: "
              f"`make bench-first-step` (`python benchmarks/first_step.py --images {images}`)."]
    record_results(SECTION, lines, "first_step", rows, print_only=args.quick)


if __name__ == "__main__":
    main()
