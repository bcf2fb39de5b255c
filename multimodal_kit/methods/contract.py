"""The task contract between a method and its data: fields by name and kind, checked before the first step.

A data module declares its fields (``PairDataModule.field_kinds``: the medium, the target ``text``, ``references``,
``id``, a task's further text, label and media fields); a method declares the fields it reads (``inputs``) and those it
produces and is trained on (``outputs``). :func:`check_fields` compares the two and names, for each field the
method needs and the data lacks, the YAML line that declares it.
"""

from __future__ import annotations

import inspect
from typing import Literal

from multimodal_kit.errors import ConfigError

#: what a field holds; the batch keys follow from it (see docs/adding_a_task.md)
FieldKind = Literal["image", "audio", "text", "label", "references", "id"]
#: in a method's declaration, the pair's medium: named and of the kind the method's ``media`` argument says
MEDIA = "media"


def declaring_line(name: str, kind: str) -> str:
    """The line under ``data.init_args`` of an experiment file that declares field ``name`` of ``kind``."""
    if kind == "text":
        return "text_column: <column>" if name == "text" else f"text_fields: {{{name}: <column>}}"
    if kind == "label":
        return f"label_fields: {{{name}: <column>}}"
    if kind in ("image", "audio") and name == kind:
        data = "ImageCaptionDataModule" if kind == "image" else "TextAudioDataModule"
        return f"media_column: <column>  (under data: class_path: {data})"
    if kind in ("references", "id"):
        return f"{kind}_column: <column>"
    return (f"media_fields: {{{name}: <column>}}  (a field of another medium than the data's: "
            f"{{{name}: {{column: <column>, medium: {kind}}}}})")


def check_fields(method: str, wanted: dict[str, str], declared: dict[str, str], data: str) -> None:
    """Refuse a method whose fields (``wanted``: name → kind) the data (``declared``) does not give.

    Raises:
        ConfigError: naming the first missing or mismatched field, the method, the data and the YAML line to add.
    """
    for name, kind in wanted.items():
        have = declared.get(name)
        if have == kind:
            continue
        fields = ", ".join(f"{n} ({k})" for n, k in declared.items())
        if have is None:
            raise ConfigError(f"{method} needs the {kind} field '{name}', which {data} does not declare (its "
                              f"fields: {fields}). Add under data.init_args in the experiment file: "
                              f"{declaring_line(name, kind)}")
        raise ConfigError(f"{method} needs '{name}' as a {kind} field, but {data} declares it as {have}: declare "
                          f"it with {declaring_line(name, kind)}, or give the method a field of that kind.")


def too_few_classes(method: str, outputs: dict[str, str], num_classes: int) -> str:
    """The message for a classifier whose ``num_classes`` (linked from the data's only label field) is below 2,
    naming its label output and the YAML line that declares it."""
    field = next((name for name, kind in outputs.items() if kind == "label"), "label")
    return (f"{method} needs the label field '{field}' with at least 2 classes, and num_classes is {num_classes} "
            "(linked from the data's label field when it declares exactly one; a method with several passes it). "
            f"Add under data.init_args in the experiment file: {declaring_line(field, 'label')}")


def declared_arguments(cls: type, base: type) -> set[str]:
    """The constructor arguments ``cls`` declares along its classes down to ``base`` (``**kwargs`` passes its
    parent's on): what the CLI may link into it and keep in its hyperparameters."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not (isinstance(klass, type) and issubclass(klass, base)) or "__init__" not in vars(klass):
            continue
        for parameter in list(inspect.signature(klass.__init__).parameters.values())[1:]:
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                names.add(parameter.name)
    return names
