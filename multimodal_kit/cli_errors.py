"""How the CLI ends on a user's mistake: one short paragraph and exit status 2, never a usage listing or a
traceback (a traceback is for bugs)."""

from __future__ import annotations

import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from multimodal_kit.data.problems import DataError
from multimodal_kit.errors import ConfigError, condense_parser_error

#: the config files of the command being parsed (-c/--config values), so a YAML syntax error names its file
GIVEN_CONFIGS: list[str] = []


def config_files(args: list[str]) -> list[str]:
    """The values of ``-c``/``--config`` in a command line that name files."""
    found = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--config")]
    found += [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    return [f for f in found if not f.lstrip().startswith("{")]


def yaml_syntax_error(files: list[str]) -> str | None:
    """The first of ``files`` that is not valid YAML, as "FILE: line L, column C: problem", or ``None``."""
    import yaml

    for name in files:
        try:
            with open(name, encoding="utf-8") as handle:
                yaml.safe_load(handle)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            return f"{name}: not valid YAML — {where}{getattr(error, 'problem', None) or error}."
        except OSError:
            continue
    return None


class KitArgumentParser(LightningArgumentParser):
    """The CLI's parser: a bad flag or config value is one short paragraph (what is wrong, and where to look),
    not the usage listing of every Trainer option followed by jsonargparse's union diagnostics."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = " ".join(["mmkit", *parser.prog.replace(" [options]", "").split()[1:]])  # also as python -m
        if "<unicode string>" in message:  # a config file that is no YAML: name the file, not a string
            message = yaml_syntax_error(GIVEN_CONFIGS) or message
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


def lost_process(error: BaseException, run_dir: str | None) -> str | None:
    """The message for a DDP job whose spawned process raised or died (``torch.multiprocessing``'s
    ``ProcessRaisedException`` / ``ProcessExitedException``): which rank, why, and what was kept; ``None`` for any
    other error."""
    from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException

    if not isinstance(error, ProcessRaisedException | ProcessExitedException):
        return None
    if isinstance(error, ProcessRaisedException):
        cause = raised_in_process(str(error))
    else:
        cause = f"it ended with {'signal ' + error.signal_name if error.signal_name else f'exit code {error.exit_code}'}"
    kept = f" The checkpoints written before it are kept in {run_dir}/checkpoints: resume with --ckpt_path last." \
        if run_dir else ""
    return (f"rank {error.error_index} of the DDP job failed ({cause}); the other processes were stopped.{kept}")


def raised_in_process(text: str) -> str:
    """The error a spawned process raised, from the traceback text torch passes back: the last exception's whole
    message (every line, joined), without the class's module; a kit error (``ConfigError``/``DataError``) as its
    message alone."""
    lines = text.strip().splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    body = lines[headers[-1] + 1:] if headers else lines
    start = next((i for i, line in enumerate(body) if line.strip() and not line[0].isspace()), None)
    if start is None:
        return "an error"
    message = " ".join(line.strip() for line in body[start:] if line.strip())
    name, colon, rest = message.partition(": ")
    if colon and " " not in name:  # "package.module.SomeError: message"
        short = name.rsplit(".", 1)[-1]
        return rest if short in ("ConfigError", "DataError") else f"{short}: {rest}"
    return message
