"""The kit's user-facing errors: one class per kind of mistake, each message naming the flag or file and the fix.

``mmkit`` prints these as one paragraph and exits with status 2, without a traceback (:func:`multimodal_kit.cli.main`);
in Python they are ordinary ``ValueError`` s.
"""

from __future__ import annotations

import difflib
import inspect
import re


class ConfigError(ValueError):
    """A setting that cannot work (a missing source, an encoder for the wrong modality, …): the message names the
    flag and the fix."""


#: the short class names the CLI knows, per section (what ``--model X`` / ``--data X`` accept without a module path)
KNOWN_CLASSES = {"model": ("Seq2Seq", "CrossModalAttention", "ConditionalGAN"),
                 "data": ("ImageCaptionDataModule", "TextAudioDataModule")}


def condense_parser_error(message: str) -> str:
    """jsonargparse's error message → one paragraph: the noise of its union handling dropped (``Expected a
    <class 'NoneType'>``, the subtype list, the given value's type), keys written as flags, and for an unknown
    argument of a class the closest accepted names."""
    noise = ("Does not validate against any of the Union subtypes", "Subtypes:", "Errors:", "Given value type:",
             "Given value:")
    parts: list[str] = []
    owner = None
    for line in message.splitlines():
        line = line.strip().removeprefix("- ").strip()
        if not line or line.startswith(noise) or line == "Expected a <class 'NoneType'>":
            continue
        problem = re.match(r"Problem with given class_path '([^']+)':", line)
        if problem:
            owner = problem[1]
            parts.append(f"({owner.rsplit('.', 1)[-1]})")
            continue
        unknown = re.match(r"(?:Option|Key) '([^']+)' is not accepted", line)
        if unknown and owner:
            line += did_you_mean(unknown[1], owner)
        parts.append(line)
    text = " ".join(parts) if parts else message
    unknown_class = re.search(r'Parser key "(\w+)":.*Expected a dot import path string: (\S+)', text, re.S)
    if unknown_class:
        key, name = unknown_class[1], unknown_class[2]
        known = KNOWN_CLASSES.get(key, ())
        close = difflib.get_close_matches(name, known, n=1)
        return (f"--{key}: no class named {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "") +
                (f"; the kit's are {', '.join(known)}" if known else "") + ", or give a class's import path.")
    text = re.sub(r'Parser key "([\w.]+)":', r"--\1:", text)
    return re.sub(r"Expected a <class '(\w+)'>", r"expected a value of type \1", text)


def did_you_mean(name: str, class_path: str) -> str:
    """`` (did you mean 'x'?)`` for the closest arguments of ``class_path``'s ``__init__`` and those of the base
    classes it forwards ``**kwargs`` to; ``""`` if none is close."""
    from multimodal_kit.utils import import_class

    try:
        cls = import_class(class_path)
    except (ImportError, ValueError, AttributeError):
        return ""
    accepted: list[str] = []
    for klass in getattr(cls, "__mro__", [cls]):
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        accepted += [n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                     and n != "self"]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    close = difflib.get_close_matches(name, accepted, n=2)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
