"""Bad input, said once and clearly: :class:`DataError`, the :class:`Problem` of one row or line, and the
message that lists them.

The data modules check every row before training (:meth:`PairDataModule.check_split`); with
``--data.bad_rows fail`` (the default) the problems of a split are raised together in one :class:`DataError`, with
``--data.bad_rows skip`` the bad rows are left out and listed in the log and in ``<run_dir>/data_report.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_LISTED = 20  # problems named in one message; the rest are counted (and all are in the report file)


class DataError(ValueError):
    """Bad input data: the message names each bad file or row and the fix."""


@dataclass(frozen=True)
class Problem:
    """One bad row or metadata line.

    Args:
        where: which row: ``row 12 (img_012.png)``, ``train/metadata.jsonl line 7``.
        what: what is wrong with it and, where it is not obvious, the fix.
    """

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def listing(problems: Sequence[Problem], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` problems, one per indented line, and how many more there are."""
    lines = [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  … and {len(problems) - limit} more")
    return "\n".join(lines)


def problems_error(problems: Sequence[Problem], subject: str, fix: str) -> DataError:
    """One :class:`DataError` for all ``problems`` of ``subject`` (a split, a file), ending with ``fix``."""
    return DataError(f"{len(problems)} bad row(s) in {subject}:\n{listing(problems)}\n{fix}")
