"""What ``predict`` reads (``--data.predict_path``): a media file, a directory of them, a ``.txt`` file of
prompts, or a ``.jsonl`` file of records (a media file and the task's further text fields, e.g. an image and
its question); each checked up front like training rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.datasets import PredictFiles, PredictRecords, Prompts
from multimodal_kit.data.problems import DataError, Problem, listing, problems_error
from multimodal_kit.data.sources import read_metadata
from multimodal_kit.data.text import token_counts


def predict_inputs(predict_path: str | None, codec: MediaCodec, tokenizer: Callable[[], PreTrainedTokenizerBase | None],
                   bad_rows: Literal["fail", "skip"], text_fields: tuple[str, ...] = (),
                   further: tuple[MediaCodec, ...] = (), max_text_length: int | None = None) -> Dataset:
    """The dataset of ``predict_path``: prompts (a ``.txt`` file, checked against ``tokenizer()`` and
    ``max_text_length`` as the training texts), records (a ``.jsonl`` file: ``file_name`` and each of
    ``text_fields`` per line, and optionally a file for each further media field of ``further``, by its name), else
    media files (which need no tokenizer)."""
    if not predict_path:
        raise DataError("predict needs inputs: pass --data.predict_path FILE_OR_DIRECTORY.")
    path = Path(predict_path).expanduser()
    if path.is_file() and path.suffix.lower() == ".txt":
        if tokenizer() is None:
            raise DataError(f"{path}: a prompts file, but this data has no text field to read prompts with; give "
                            f"--data.predict_path a media file or a directory of them ({', '.join(codec.extensions)}).")
        return checked_prompts(path, tokenizer(), max_text_length)
    if path.is_file() and path.suffix.lower() == ".jsonl":
        return checked_records(path, codec, text_fields, bad_rows, further, tokenizer() if text_fields else None,
                               max_text_length)
    return PredictFiles(readable(media_files(predict_path, codec.extensions), codec, bad_rows, predict_path), codec)


def media_files(predict_path: str, extensions: tuple[str, ...]) -> list[Path]:
    """The files named by ``predict_path`` (a file, or every file with one of ``extensions`` in a directory)."""
    path = Path(predict_path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"--data.predict_path={predict_path!r}: no such file or directory.")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    folders = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not files:
        raise DataError(f"--data.predict_path={predict_path!r} holds no media files ({', '.join(extensions)})"
                        + (f"; its subfolders ({', '.join(folders[:5])}) are not read: give one as --data.predict_path."
                           if folders else "."))
    if folders:
        rank_zero_warn(f"--data.predict_path={predict_path!r}: its subfolders are not read ({', '.join(folders[:5])}"
                       f"{', …' if len(folders) > 5 else ''}); predict each with its own --data.predict_path.")
    return files


def readable(files: list[Path], codec: MediaCodec, bad_rows: Literal["fail", "skip"], predict_path: str
             ) -> list[Path]:
    """The files that load, each decoded once up front: a bad one fails with one message naming every bad file,
    or is left out with ``--data.bad_rows skip`` (named in a warning)."""
    problems, bad = [], set()
    for path in files:
        try:
            codec.load_file(path)
        except DataError as error:
            problems.append(Problem(path.name, str(error).removeprefix(f"{path}: ")))
            bad.add(path)
    if problems and (bad_rows == "fail" or len(problems) == len(files)):
        raise problems_error(problems, f"--data.predict_path={predict_path!r}",
                             "Fix or remove these files" + (", or pass --data.bad_rows skip to leave them out."
                                                            if bad_rows == "fail" else "."))
    if problems:
        rank_zero_warn(f"Skipped {len(problems)} of {len(files)} inputs of --data.predict_path (--data.bad_rows "
                       f"skip):\n{listing(problems)}")
    return [path for path in files if path not in bad]  # by file, not by name: a/x.png is not b/x.png


def units_of(tokenizer: PreTrainedTokenizerBase) -> str:
    """What the tokenizer's tokens are, in words: ``characters`` for a character vocabulary, else ``words``."""
    vocabulary = [t for t in tokenizer.get_vocab() if t not in tokenizer.all_special_tokens]
    return "characters" if vocabulary and all(len(t) == 1 for t in vocabulary) else "words"


def unreadable_texts(texts: list[str | None], tokenizer: PreTrainedTokenizerBase, max_text_length: int | None
                     ) -> list[str | None]:
    """Per predict text, what keeps it from being read as the training texts are, or ``None``: empty (or
    missing), holding tokens the tokenizer does not know (they would become its unknown token), or more tokens
    than the training texts may have (``max_text_length``, BOS and EOS included; a training row that long is a bad
    row). One tokenizer pass over all texts."""
    given = ["" if text is None else str(text) for text in texts]
    if not given:
        return []
    ids = tokenizer(given, add_special_tokens=False)["input_ids"]
    counts = token_counts(tokenizer, given)
    said: list[str | None] = []
    for text, row, count in zip(given, ids, counts, strict=True):
        if not text.strip():
            said.append("is empty")
        elif tokenizer.unk_token_id is not None and tokenizer.unk_token_id in row:
            said.append(f"holds {units_of(tokenizer)} the model never saw in training: {text!r}")
        elif max_text_length is not None and count > max_text_length:
            said.append(f"has {count} tokens, more than --data.max_text_length={max_text_length} (the training "
                        f"texts' limit): {text[:60]!r}{'…' if len(text) > 60 else ''}; shorten it or split it in two")
        else:
            said.append(None)
    return said


def record_problems(records: list[dict], text_fields: tuple[str, ...], tokenizer: PreTrainedTokenizerBase,
                    names: list[str], max_text_length: int | None = None) -> list[Problem]:
    """Every :func:`unreadable_texts` finding in the records' text fields, each naming its record (``names``, one
    per record: its line in the file) and field."""
    problems = []
    for field in text_fields:
        for where, said in zip(names, unreadable_texts([r.get(field) for r in records], tokenizer, max_text_length),
                               strict=True):
            if said:
                problems.append(Problem(where, f"{field!r} {said}"))
    return problems


def checked_prompts(path: Path, tokenizer: PreTrainedTokenizerBase, max_text_length: int | None = None) -> Prompts:
    """The prompts of a text file, checked as the training texts are (:func:`unreadable_texts`); each bad one
    named by its line in the file."""
    prompts = Prompts(path)
    bad = [Problem(f"line {line}", said) for line, said in
           zip(prompts.line_numbers, unreadable_texts(prompts.prompts, tokenizer, max_text_length), strict=True) if said]
    if bad:
        raise DataError(f"{path}: {len(bad)} prompt(s) the model cannot read as it read its training texts:\n"
                        f"{listing(bad)}\nUse {units_of(tokenizer)} of the training texts, within the length of "
                        "the training texts.")
    return prompts


def checked_records(path: Path, codec: MediaCodec, text_fields: tuple[str, ...], bad_rows: Literal["fail", "skip"],
                    further: tuple[MediaCodec, ...] = (),
                    tokenizer: PreTrainedTokenizerBase | None = None, max_text_length: int | None = None
                    ) -> PredictRecords:
    """The records of a JSON-lines file, each with ``file_name`` (relative to the file's folder), every field
    of ``text_fields`` and, where given, a file per further media field (by its name, relative too); a line that
    is not such a record is an error naming it, as is a media file that does not load (or, with
    ``bad_rows: skip``, left out)."""
    rows, problems, lines = read_metadata(path, required=text_fields)
    records = [{**row, "file_name": path.parent / str(row["file_name"]),
                **{c.key: path.parent / str(row[c.key]) for c in further if row.get(c.key)}} for row in rows]
    if problems:
        raise problems_error(problems, f"--data.predict_path={str(path)!r}",
                             "Write one JSON object per line with file_name" + "".join(f", {f}" for f in text_fields)
                             + ".")
    if not records:
        raise DataError(f"{path}: no records; write one JSON object per line.")
    if tokenizer is not None:
        names = [f"line {n} ({Path(r['file_name']).name})" for n, r in zip(lines, records, strict=True)]
        unreadable = record_problems(records, text_fields, tokenizer, names, max_text_length)
        if unreadable:
            raise problems_error(unreadable, f"--data.predict_path={str(path)!r}",
                                 f"Give each record's text in {units_of(tokenizer)} of the training texts, within "
                                 "their length.")
    for other in further:  # a field in some records only would batch unevenly
        lacking = [n for n, r in zip(lines, records, strict=True) if other.key not in r]
        if lacking and len(lacking) < len(records):
            raise DataError(f"{path}: lines {lacking[:10]} name no {other.key!r} file and the others do; give it "
                            "in every record or in none.")
    ok = _loads([r["file_name"] for r in records], codec, bad_rows, str(path))
    for other in further:
        if other.key in records[0]:
            ok = [a and b for a, b in zip(ok, _loads([r[other.key] for r in records], other, bad_rows, str(path)),
                                          strict=True)]
    return PredictRecords([r for r, keep in zip(records, ok, strict=True) if keep], codec, text_fields, further)


def _loads(files: list[Path], codec: MediaCodec, bad_rows: Literal["fail", "skip"], where: str) -> list[bool]:
    """Whether each of ``files`` loads with ``codec`` (:func:`readable`'s checks and messages)."""
    good = set(readable(files, codec, bad_rows, where)) if files else set()
    return [f in good for f in files]
