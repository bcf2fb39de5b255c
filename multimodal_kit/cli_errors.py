"""How the CLI ends on a user's mistake: one short paragraph and exit status 2, never a usage listing or a
traceback (a traceback is for bugs)."""

from __future__ import annotations

import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from multimodal_kit.data.problems import DataError
from multimodal_kit.errors import ConfigError, condense_parser_error


class KitArgumentParser(LightningArgumentParser):
    """The CLI's parser: a bad flag or config value is one short paragraph (what is wrong, and where to look),
    not the usage listing of every Trainer option followed by jsonargparse's union diagnostics."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = " ".join(["mmkit", *parser.prog.replace(" [options]", "").split()[1:]])  # also as python -m
        sys.stderr.write(f"{prog}: error: {condense_parser_error(message)}\nThe options: {prog} --help "
                         "(of a class: --model.help CLASS, --data.help CLASS).\n")
        self.exit(2)


def user_mistake(error: BaseException) -> DataError | ConfigError | None:
    """The :class:`DataError` or :class:`ConfigError` that caused ``error`` (jsonargparse wraps what a class's
    ``__init__`` raises into its own ``ValueError``), or ``None`` for anything else."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, DataError | ConfigError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
