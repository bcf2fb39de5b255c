"""Row checks before training: every text field and every media file of a split, checked once.

:func:`check_split` returns a :class:`SplitCheck` (the bad rows and why, the conversions worth knowing, and the
decoded media when asked to keep them); :func:`settle` applies ``--data.bad_rows`` to it: one
:class:`~multimodal_kit.data.problems.DataError` naming every bad row, or the rows to keep. :class:`DataReport`
collects what was found for ``<run_dir>/data_report.json``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import torch
from transformers import PreTrainedTokenizerBase

from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.feature_cache import preprocessing
from multimodal_kit.data.fields import Rows, media_files, media_present
from multimodal_kit.data.media_check import (
    Gather,
    RowChecks,
    cache_file,
    outcomes,
    process_group,
)
from multimodal_kit.data.problems import Problem, listing, problems_error
from multimodal_kit.data.text import token_counts
from multimodal_kit.utils import kit_cache, rank_zero_info

REPORT_NAME = "data_report.json"  # in the run directory: every bad row found, skipped or not


@dataclass
class SplitCheck:
    """What checking one split found.

    Attributes:
        problems: per bad row index, what is wrong with it.
        notes: conversions worth knowing (stereo mixed down, resampled), one per file.
        media: every row's decoded item tensor when kept (a placeholder where the row is bad), else ``None``.
    """

    problems: dict[int, list[str]] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)
    media: list[torch.Tensor] | None = None

    def listed(self, ids: list[str]) -> list[Problem]:
        return [Problem(f"row {i} ({ids[i]})", "; ".join(self.problems[i])) for i in sorted(self.problems)]


def _longest(tokenizer: PreTrainedTokenizerBase, groups: list[list[Any]]) -> list[int]:
    """The most tokens of any text in each group (BOS and EOS included), counted in one tokenizer call."""
    flat = token_counts(tokenizer, [str(t or "") for group in groups for t in group])
    ends = list(itertools.accumulate(len(g) for g in groups))
    return [max(flat[end - len(g):end], default=0) for g, end in zip(groups, ends, strict=True)]


def text_problems(rows: Rows, tokenizer: PreTrainedTokenizerBase, max_length: int, check_references: bool,
                  columns: dict[str, str], ref_lengths: list[int] | None = None) -> dict[int, list[str]]:
    """Per bad row, what is wrong with its texts: an empty one, or more tokens than ``max_length`` — the
    target text, every further text field, and (``check_references``: the training split when references are
    drawn as targets) every reference. ``columns`` names each field's column for the messages; ``ref_lengths``:
    each row's longest reference, if counted already."""
    problems: dict[int, list[str]] = {}
    texts = {k: rows.fields[k] for k in columns if k not in ("text", "references")}
    if columns.get("text") is not None:
        texts = {"text": rows.texts, **texts}
    for name, values in texts.items():
        lengths = _longest(tokenizer, [[v] for v in values])
        for i, (value, n) in enumerate(zip(values, lengths, strict=True)):
            if value is None or not str(value).strip():
                problems.setdefault(i, []).append(f"empty text in column {columns[name]!r}")
            elif n > max_length:
                problems.setdefault(i, []).append(f"{n} tokens, more than --data.max_text_length={max_length}"
                                                  + ("" if name == "text" else f" in column {columns[name]!r}"))
    if columns.get("references") is None:  # the text is the only reference: checked above
        return problems
    if check_references and ref_lengths is None:
        ref_lengths = _longest(tokenizer, rows.references)
    ref_lengths = ref_lengths if check_references else None
    for i, refs in enumerate(rows.references):
        if any(r is None or not str(r).strip() for r in refs):
            problems.setdefault(i, []).append(f"an empty reference in column {columns['references']!r}")
        elif ref_lengths is not None and ref_lengths[i] > max_length and i not in problems:
            problems.setdefault(i, []).append(f"a reference of {ref_lengths[i]} tokens in column "
                                              f"{columns['references']!r}, more than --data.max_text_length="
                                              f"{max_length}")
    return problems


def media_problems(split: datasets.Dataset, media_column: str, ids: list[str], codec: MediaCodec, decode: bool,
                   keep: bool, workers: int | None = None, cache: Path | None = None,
                   world: tuple[int, int] = (1, 0), gather: Gather = lambda x: [x],
                   processes_per_node: int = 1) -> SplitCheck:
    """Check every row's medium: the file exists and, with ``decode``, loads (:meth:`MediaCodec.load`); with
    ``keep``, return the decoded tensors too. ``split`` holds the media column undecoded. The decoding runs in
    ``workers`` loader workers (``None``: :func:`~.media_check.check_workers` decides); with ``cache`` (a file,
    :func:`~.media_check.cache_file`; not when keeping) unchanged files are not decoded again and the rows left
    are shared out over ``world`` = (processes, rank), their outcomes collected with ``gather``."""
    rows = range(len(split))
    checks = RowChecks(split, media_column, ids, codec, rows, media_files(split, media_column),
                       media_present(split, media_column), decode, keep)
    found = SplitCheck(media=[] if keep else None)
    description = "checking media" if decode else "checking files"
    every = outcomes(checks, workers, description, cache if decode and not keep else None, world, gather,
                     processes_per_node)
    for i in rows:
        _, problems, note, item = every[i]
        if problems:
            found.problems[i] = problems
        if note:
            found.notes.append(Problem(f"row {i} ({ids[i]})", note))
        if found.media is not None:
            found.media.append(torch.empty(0) if item is None else torch.from_numpy(item))
    return found


def settle(found: SplitCheck, ids: list[str], subject: str, bad_rows: Literal["fail", "skip"],
           report: Path | None) -> list[int] | None:
    """Apply ``--data.bad_rows`` to what a check found: ``None`` when every row is good; the rows to keep with
    ``skip``; a :class:`DataError` naming every bad row with ``fail`` (or when every row is bad)."""
    if not found.problems:
        return None
    listed = found.listed(ids)
    where = f" All of them are listed in {report}." if report else ""
    if bad_rows == "fail":
        raise problems_error(listed, subject, "Fix the files or the metadata (or raise --data.max_text_length / "
                             "--data.max_seconds / --data.max_image_pixels for long or large ones), or pass "
                             f"--data.bad_rows skip to leave these rows out.{where}")
    if len(found.problems) == len(ids):
        raise problems_error(listed, subject, "Every row is bad; nothing is left to train on.")
    from lightning.pytorch.utilities import rank_zero_warn

    rank_zero_warn(f"Skipped {len(listed)} of {len(ids)} rows of {subject} (--data.bad_rows skip):\n"
                   f"{listing(listed)}{where}")
    return [i for i in range(len(ids)) if i not in found.problems]


class DataReport:
    """What the checks found, per split (and unreadable metadata lines), for ``<run_dir>/data_report.json``."""

    def __init__(self) -> None:
        self.parts: dict[str, Any] = {}

    def add_split(self, name: str, rows: int, found: SplitCheck, ids: list[str], skipped: bool) -> None:
        self.parts[name] = {"rows": rows, "bad": [p.to_dict() for p in found.listed(ids)],
                            "skipped": len(found.problems) if skipped else 0,
                            "converted": [p.to_dict() for p in found.notes]}

    def add_metadata(self, skipped: dict[str, list[Problem]]) -> None:
        self.parts["metadata"] = {split: [p.to_dict() for p in problems] for split, problems in skipped.items()}

    def write(self, directory: Path | None, is_global_zero: bool) -> Path | None:
        """Write the report into ``directory`` (rank zero; only when something was found); return its path, or
        ``None`` without a directory or with nothing to report."""
        found = "metadata" in self.parts or any(part.get("bad") or part.get("converted")
                                                 for part in self.parts.values())
        if not found or directory is None:
            return None
        path = directory / REPORT_NAME
        if is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.parts, indent=1) + "\n")
        return path


def label_problems(rows: Rows, labels: dict[str, list[str]], columns: dict[str, str]) -> dict[int, list[str]]:
    """Per bad row, its empty labels and those that are not among the field's classes (``labels``, per field: the
    training split's values, or a checkpoint's; ``columns`` names each field's column)."""
    problems: dict[int, list[str]] = {}
    for name, classes in labels.items():
        known = set(classes)
        for i, value in enumerate(rows.fields[name]):
            if value is None or not str(value).strip():
                problems.setdefault(i, []).append(f"empty label in column {columns[name]!r}")
            elif str(value) not in known:
                problems.setdefault(i, []).append(f"label {str(value)!r} in column {columns[name]!r} is not one of "
                                                  f"its {len(classes)} classes (the training split's values, or "
                                                  "the checkpoint's)")
    return problems


PRELOAD_LIMIT_BYTES = 2 * 1024**3  # decode a split into memory up front when it takes less than this


def check_split(datamodule: Any, name: str, collective: bool = False) -> None:
    """Check every row of a kit data module's split ``name`` once: its texts, its media (decoded when checking
    media or preloading, kept when preloading; the outcome cached), the bad rows failed or skipped, the report
    written. ``collective``: every process of the trainer's DDP job calls this now (its ``setup``), so they share
    the media check out and gather it."""
    if name in datamodule.checked_splits:
        return
    hp = datamodule.hparams
    split, rows = datamodule.splits[name], datamodule.rows[name]
    check_refs = name == "train" and hp.train_text == "random"
    tokenizer = datamodule.tokenizer
    # the training references' lengths: checked here (drawn as targets), and the decoding limit's data
    ref_lengths = _longest(tokenizer, rows.references) if tokenizer is not None and name == "train" else None
    problems = text_problems(rows, tokenizer, hp.max_text_length, check_refs, datamodule.text_columns[name],
                             ref_lengths) if tokenizer is not None else {}
    for i, what in label_problems(rows, datamodule.labels, datamodule.fields.label_fields).items():
        problems[i] = problems.get(i, []) + what
    codecs = datamodule.codecs
    preload = hp.preload if hp.preload is not None else \
        len(split) * sum(c.nbytes() for c in codecs) <= PRELOAD_LIMIT_BYTES
    world, gather = process_group(datamodule.trainer) if collective else ((1, 0), lambda x: [x])
    per_node = datamodule.trainer.num_devices if collective and datamodule.trainer is not None else 1
    root = kit_cache("media_checks", hp.cache_dir)
    settings = preprocessing(dict(hp))
    founds = [media_problems(split, codec.media_column, rows.ids, codec, decode=preload or hp.check_media,
                             keep=preload, workers=hp.get("check_workers"), world=world, gather=gather,
                             processes_per_node=per_node,
                             cache=cache_file(root, split, codec.media_column, settings)) for codec in codecs]
    found = founds[0]
    for other in founds[1:]:
        found.notes += other.notes
        for i, what in other.problems.items():
            found.problems[i] = found.problems.get(i, []) + what
    for i, what in problems.items():
        found.problems[i] = what + found.problems.get(i, [])
    subject = f"split '{name}' of {datamodule.source!r}"
    datamodule.report.add_split(name, len(rows), found, rows.ids, skipped=hp.bad_rows == "skip")
    trainer = datamodule.trainer
    report = datamodule.report.write(Path(trainer.default_root_dir) if trainer else None,
                                     trainer is None or trainer.is_global_zero)
    if found.notes:
        rank_zero_info(f"{len(found.notes)} media file(s) of {subject} converted on loading:\n"
                       f"{listing(found.notes)}")
    keep = settle(found, rows.ids, subject, hp.bad_rows, report)
    media = {codec.key: each.media for codec, each in zip(codecs, founds, strict=True) if each.media is not None}
    if ref_lengths:
        datamodule.longest_training_text = max(ref_lengths[i] for i in (keep if keep is not None else range(len(rows))))
    if keep is not None:
        datamodule.splits[name], datamodule.rows[name] = split.select(keep), rows.select(keep)
        media = {key: [items[i] for i in keep] for key, items in media.items()}
    if media:
        datamodule.preloaded_media[name] = media
    datamodule.checked_splits.add(name)


def check_batch_sizes(batch_size: int, eval_batch_size: int | None,
                      named: Callable[[str], str] = lambda flag: f"--data.init_args.{flag}") -> int:
    """``batch_size``, after refusing a batch size below 1 (``eval_batch_size`` ``None``: the training one),
    naming where it was given (``named``: the argument's name → the flag, or the config file and key)."""
    from multimodal_kit.errors import ConfigError

    for flag, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if value is not None and value < 1:
            raise ConfigError(f"{named(flag)} {value}: a batch holds at least 1 pair.")
    return batch_size
