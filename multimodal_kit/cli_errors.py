"""How the CLI ends on a user's mistake: one short paragraph and exit status 2, never a usage listing or a
traceback (a traceback is for bugs)."""

from __future__ import annotations

import sys
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from multimodal_kit.data.problems import DataError
from multimodal_kit.errors import ConfigError, condense_parser_error

#: the command line being parsed, so a YAML syntax error or a bad value names the file that gave it
GIVEN_ARGS: list[str] = []


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


def given_where(key: str, value: object) -> str:
    """Where the value of a config ``key`` (``data.init_args.batch_size``) was given, for an error message: the
    last source on the command line that sets it — its flag (``--key``, or the form without ``init_args``), or
    ``FILE: key`` for a config file that sets it to ``value`` — else the key alone (e.g. a JSON group)."""
    flags = {f"--{key}", f"--{key.replace('.init_args.', '.')}"}
    for i in range(len(GIVEN_ARGS) - 1, -1, -1):
        name, eq, inline = GIVEN_ARGS[i].partition("=")
        if name in flags:
            return name
        if name in ("-c", "--config"):
            file = inline if eq else GIVEN_ARGS[i + 1] if i + 1 < len(GIVEN_ARGS) else ""
            if not file.lstrip().startswith("{") and _file_value(file, key) == value:
                return f"{file}: {key}"
    return key


def _file_value(file: str, key: str) -> object:
    """The value a YAML config file gives ``key`` (``data: {init_args: {…}}`` or ``data: {…}``), or ``None``."""
    import yaml

    try:
        with open(file, encoding="utf-8") as handle:
            node = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError):
        return None
    parts = key.split(".")
    for path in (parts, [p for p in parts if p != "init_args"]):
        found: object = node
        for part in path:
            found = found.get(part) if isinstance(found, dict) else None
        if found is not None:
            return found
    return None


def check_counts(config: object) -> None:
    """Refuse counts no run can have (``max_epochs``/``max_steps`` below -1, a batch size below 1) before anything
    is built, naming the file or flag that gave each."""
    from multimodal_kit.data.checks import check_batch_sizes

    for flag in ("max_epochs", "max_steps"):
        value = config.trainer.get(flag)  # type: ignore[attr-defined]
        if value is not None and value < -1:
            raise ConfigError(f"{given_where(f'trainer.{flag}', value)} {value}: give a count of at least 0, or "
                              "-1 for no limit.")
    data = (config.get("data") or {}).get("init_args") or {}  # type: ignore[attr-defined]
    sizes = {flag: data.get(flag) for flag in ("batch_size", "eval_batch_size")}
    if any(isinstance(size, int) for size in sizes.values()):
        check_batch_sizes(sizes["batch_size"], sizes["eval_batch_size"],
                          named=lambda flag: given_where(f"data.init_args.{flag}", sizes[flag]))


class KitArgumentParser(LightningArgumentParser):
    """The CLI's parser: a bad flag or config value is one short paragraph (what is wrong, and where to look),
    not the usage listing of every Trainer option followed by jsonargparse's union diagnostics."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = " ".join(["mmkit", *parser.prog.replace(" [options]", "").split()[1:]])  # also as python -m
        if "<unicode string>" in message:  # a config file that is no YAML: name the file, not a string
            message = yaml_syntax_error(config_files(GIVEN_ARGS)) or message
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
