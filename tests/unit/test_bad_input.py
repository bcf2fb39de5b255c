"""Bad input, for both data modules: each kind fails before training with a message naming the row and file
(``--data.bad_rows fail``, the default), or is left out and reported (``--data.bad_rows skip``); conversions
(stereo, other sample rates) are done and named."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
from lightning.pytorch import Trainer
from PIL import Image

from multimodal_kit.data.base import DataError, PairDataModule
from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.text_audio import TextAudioDataModule
from tests.helpers import write_audiofolder, write_imagefolder

VICTIM = 2  # the row each case spoils


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("templates")
    return {"image": write_imagefolder(base / "image", {"train": 6, "validation": 2}),
            "audio": write_audiofolder(base / "audio", {"train": 6, "validation": 2})}


def folder(templates: dict[str, Path], pair: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(templates[pair], tmp_path / pair))


def rows(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "train" / "metadata.jsonl").read_text().splitlines()]


def victim_file(root: Path) -> Path:
    return root / "train" / rows(root)[VICTIM]["file_name"]


def set_text(root: Path, text: str) -> None:
    table = rows(root)
    table[VICTIM]["text"] = text
    table[VICTIM].pop("captions", None)
    (root / "train" / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in table) + "\n")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def latin1_line(root: Path) -> None:
    meta = root / "train" / "metadata.jsonl"
    lines = meta.read_bytes().splitlines()
    lines[VICTIM] = lines[VICTIM].replace(b'"text": "', b'"text": "caf\xe9 ')
    meta.write_bytes(b"\n".join(lines) + b"\n")


def module(pair: str, root: Path, **kwargs) -> PairDataModule:
    cls = ImageCaptionDataModule if pair == "image" else TextAudioDataModule
    return cls(str(root), **kwargs)


#: kind → (spoil the victim row, the expected words after "row 2 (<file>): ", data module options)
COMMON: dict[str, tuple[Callable[[Path], None], str, dict]] = {
    "missing file": (lambda root: victim_file(root).unlink(), "media file not found: .*", {}),
    "corrupt file": (lambda root: victim_file(root).write_bytes(b"this is not media at all"),
                     "not a readable (image|audio file)", {}),
    "truncated file": (lambda root: truncate(victim_file(root)), "truncated (image|audio file)", {}),
    "empty text": (lambda root: set_text(root, ""), "empty text in column 'text'", {}),
    "whitespace-only text": (lambda root: set_text(root, " \t "), "empty text in column 'text'", {}),
    "caption over the maximum length": (lambda root: set_text(root, "one two " * 12),
                                        "26 tokens, more than --data.max_text_length=20", {"max_text_length": 20}),
}
IMAGE_ONLY = {
    "huge image": (lambda root: Image.new("RGB", (120, 100)).save(victim_file(root)),
                   "a 120×100 image, more than --data.max_image_pixels=10000; downscale it", {"max_image_pixels": 10_000}),
}
AUDIO_ONLY = {
    "zero-length audio": (lambda root: soundfile.write(victim_file(root), np.zeros(0, np.float32), 16_000),
                          "the audio holds no samples", {}),
    "audio over the maximum duration": (
        lambda root: soundfile.write(victim_file(root), np.zeros(16_000 * 40, np.float32), 16_000),
        r"40.0 s of audio, more than --data.max_seconds=30; trim the file or raise the limit", {}),
}
CASES = [("image", kind, *case) for kind, case in {**COMMON, **IMAGE_ONLY}.items()] + \
        [("audio", kind, *case) for kind, case in {**COMMON, **AUDIO_ONLY}.items()]


@pytest.mark.parametrize(("pair", "kind", "spoil", "expected", "options"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_row_fails_before_training_naming_row_and_file(templates, tmp_path, pair, kind, spoil, expected,
                                                           options) -> None:
    root = folder(templates, pair, tmp_path)
    name = rows(root)[VICTIM]["file_name"]
    spoil(root)
    with pytest.raises(DataError, match=rf"1 bad row\(s\) in split 'train'.*\n  row {VICTIM} \({name}\): {expected}"):
        module(pair, root, **options).setup("fit")


@pytest.mark.parametrize("pair", ["image", "audio"])
def test_non_utf8_metadata_line_is_named_with_the_fix(templates, tmp_path, pair) -> None:
    root = folder(templates, pair, tmp_path)
    latin1_line(root)
    with pytest.raises(DataError, match=rf"metadata.jsonl line {VICTIM + 1}: not UTF-8 \(byte 0xe9 .*iconv"):
        module(pair, root).setup("fit")


@pytest.mark.parametrize("pair", ["image", "audio"])
def test_skip_leaves_bad_rows_out_and_reports_them(templates, tmp_path, pair) -> None:
    root = folder(templates, pair, tmp_path)
    table = rows(root)
    table[0]["text"] = ""
    (root / "train" / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in table) + "\n")
    (root / "train" / table[4]["file_name"]).write_bytes(b"garbage")
    latin1_line(root)  # row 2's line: left out when the metadata is read
    dm = module(pair, root, bad_rows="skip")
    dm.trainer = Trainer(default_root_dir=str(tmp_path / "run"), logger=False, enable_checkpointing=False)
    with pytest.warns(UserWarning) as caught:
        dm.setup("fit")
    said = "\n".join(str(w.message) for w in caught)
    assert "Skipped 1 unreadable metadata line(s)" in said and f"metadata.jsonl line {VICTIM + 1}" in said
    assert "Skipped 2 of 5 rows of split 'train'" in said
    assert f"({table[0]['file_name']}): empty text" in said and f"({table[4]['file_name']}): not a readable" in said
    kept = dm.dataset("train").ids
    assert sorted(kept) == sorted(r["file_name"] for i, r in enumerate(table) if i not in (0, VICTIM, 4))
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["train"]["rows"] == 5 and report["train"]["skipped"] == 2
    assert [p["where"] for p in report["train"]["bad"]] == [f"row 0 ({table[0]['file_name']})",
                                                           f"row 3 ({table[4]['file_name']})"]
    assert report["metadata"]["train"][0]["where"] == f"metadata.jsonl line {VICTIM + 1}"
    assert next(iter(dm.train_dataloader()))["id"]  # training goes on with the good rows


def test_skip_with_every_row_bad_is_an_error(templates, tmp_path) -> None:
    root = folder(templates, "image", tmp_path)
    for path in (root / "train").glob("*.png"):
        path.write_bytes(b"garbage")
    with pytest.raises(DataError, match="Every row is bad"):
        module("image", root, bad_rows="skip").setup("fit")


@pytest.mark.parametrize(("channels", "rate", "note"), [(2, 16_000, "2 channels mixed to mono"),
                                                        (1, 8_000, "resampled from 8000 Hz to 16000 Hz")],
                         ids=["stereo", "odd-rate"])
def test_stereo_and_odd_rate_audio_are_converted_and_named(templates, tmp_path, caplog, channels, rate,
                                                           note) -> None:
    root = folder(templates, "audio", tmp_path)
    victim = victim_file(root)
    wave, original = soundfile.read(victim, dtype="float32")
    seconds = len(wave) / original
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    soundfile.write(victim, np.stack([tone] * channels, 1) if channels > 1 else tone, rate)
    dm = module("audio", root)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert f"row {VICTIM} ({victim.name}): {note}" in caplog.text
    features = dm.dataset("train").media_at(VICTIM)
    assert features.shape == (1 + int(seconds * 16_000) // 160, dm.n_mels)  # mono, 16 kHz frames


@pytest.mark.parametrize("pair", ["image", "audio"])
def test_bad_predict_inputs_are_named_up_front_or_skipped(templates, tmp_path, pair) -> None:
    inputs = Path(shutil.copytree(templates[pair] / "validation", tmp_path / "inputs"))
    (inputs / "metadata.jsonl").unlink()
    suffix = ".png" if pair == "image" else ".wav"
    (inputs / f"broken{suffix}").write_bytes(b"garbage")
    good = sorted(p.name for p in inputs.iterdir() if p.name != f"broken{suffix}")
    with pytest.raises(DataError, match=rf"1 bad row\(s\) in --data.predict_path=.*\n  broken{suffix}: not a readable"):
        module(pair, inputs, predict_path=str(inputs)).predict_dataloader()
    with pytest.warns(UserWarning, match=f"(?s)Skipped 1 of 3 inputs .*broken{suffix}"):
        loader = module(pair, inputs, predict_path=str(inputs), bad_rows="skip").predict_dataloader()
    assert sorted(next(iter(loader))["id"]) == good


def test_check_media_false_only_checks_that_files_exist(templates, tmp_path) -> None:
    """For very large trusted sets: no decoding up front (a corrupt file passes the checks), missing files still
    fail."""
    root = folder(templates, "image", tmp_path)
    victim_file(root).write_bytes(b"garbage")
    module("image", root, check_media=False, preload=False).setup("fit")
    victim_file(root).unlink()
    with pytest.raises(DataError, match=rf"row {VICTIM} \(.*\): media file not found"):
        module("image", root, check_media=False, preload=False).setup("fit")


def test_skipped_predict_inputs_are_matched_by_file_and_subfolders_are_named(templates, tmp_path) -> None:
    from multimodal_kit.data.predict_inputs import media_files, readable

    inputs = Path(shutil.copytree(templates["image"] / "validation", tmp_path / "inputs"))
    (inputs / "metadata.jsonl").unlink()
    image = sorted(inputs.glob("*.png"))[0]
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    shutil.copy(image, tmp_path / "a" / "x.png")
    (tmp_path / "b" / "x.png").write_bytes(b"garbage")  # the same name, another folder
    codec = module("image", inputs).codec
    with pytest.warns(UserWarning, match=r"Skipped 1 of 2 inputs"):
        kept = readable([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"], codec, "skip", "records.jsonl")
    assert kept == [tmp_path / "a" / "x.png"]  # the good a/x.png stays
    (inputs / "more").mkdir()
    with pytest.warns(UserWarning, match=r"subfolders are not read \(more\)"):
        assert len(media_files(str(inputs), (".png",))) == len(list(inputs.glob("*.png")))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_prompts_file_with_a_byte_order_mark_reads_and_lines_are_the_files_own(tmp_path, encoding) -> None:
    from multimodal_kit.data.datasets import Prompts

    path = tmp_path / "prompts.txt"
    path.write_text("a red circle\n\n  \nnine\n", encoding=encoding)
    prompts = Prompts(path)
    assert prompts.prompts == ["a red circle", "nine"] and prompts.line_numbers == [1, 4]
    path.write_text("a red\u2028circle\r\nnine\n", encoding=encoding)  # a line separator inside a line
    assert Prompts(path).line_numbers == [1, 2]  # lines as an editor counts them
    path.write_bytes("caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text .* save it as UTF-8"):
        Prompts(path)


def test_predict_texts_are_refused_as_training_texts_would_be_naming_each_line(tmp_path) -> None:
    """A synthesizer's prompts: unknown characters, and a prompt longer than the training texts may be (a
    2,000-character one would be cut at max_frames), are refused up front, each by its own line (blank lines
    counted), in the vocabulary's unit; a record's text field the same way."""
    from multimodal_kit.data.predict_inputs import checked_prompts, record_problems
    from multimodal_kit.data.text import train_tokenizer

    tokenizer = train_tokenizer(["one two three", "go left"], kind="char")
    path = tmp_path / "prompts.txt"
    path.write_text("one two\n\ngo left\nxyz\n" + "one two three " * 150 + "\n")
    with pytest.raises(DataError) as error:
        checked_prompts(path, tokenizer, max_text_length=300)
    said = str(error.value)
    assert "2 prompt(s)" in said and "line 4: holds characters the model never saw in training: 'xyz'" in said
    assert "line 5: has 2101 tokens, more than --data.max_text_length=300" in said and "split it" in said
    path.write_text("one two\n\ngo left\n")
    assert checked_prompts(path, tokenizer, max_text_length=300).prompts == ["one two", "go left"]
    problems = record_problems([{"question": "go left " * 40}, {"question": None}], ("question",), tokenizer,
                               ["line 2 (a.png)", "line 3 (b.png)"], 300)
    assert [str(p) for p in problems] == ["line 2 (a.png): 'question' has 321 tokens, more than "
                                          "--data.max_text_length=300 (the training texts' limit): 'go left go left "
                                          "go left go left go left go left go left go l'…; shorten it or split it "
                                          "in two", "line 3 (b.png): 'question' is empty"]  # null: empty
