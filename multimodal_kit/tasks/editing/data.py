"""The embedded ``shapes_edit`` set: a ``shapes`` scene, an instruction ("make the red circle blue", "make the
small square large", "turn the triangle into a circle") and the same scene edited as asked — the same background
noise, the same places, one attribute of one object changed — generated offline and deterministically, and
registered as ``--data.source shapes_edit`` when this task is imported.

Columns: ``image`` (the scene), ``target`` (the edited scene), ``instruction``, ``text`` (the edited scene's
caption, what a reader should read in the output), ``source_text`` (the scene's caption), ``edit`` (the attribute
changed: ``color``/``shape``/``size``), ``edited`` (which object, in the caption's order: ``0``/``1``), ``id``.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field

import datasets
import numpy as np
from PIL import Image

from multimodal_kit.data.embedded import EMBEDDED, EmbeddedSet, register_embedded
from multimodal_kit.data.embedded.shapes import (
    COLORS,
    SHAPES,
    SIZES,
    SPLITS,
    SceneObject,
    ShapesConfig,
    render_scene,
    scene_captions,
    scene_parts,
)

EDITS = ("color", "shape", "size")


@dataclass(frozen=True)
class EditConfig:
    """Parameters of the generated set (the scenes are ``shapes``' with the same sizes, image size and seed).

    Args:
        num_train: training edits.
        num_validation: validation edits.
        num_test: test edits.
        image_size: side of the square image in pixels.
        seed: the seed every scene and edit derive from.
    """

    num_train: int = 10_000
    num_validation: int = 1_000
    num_test: int = 1_000
    image_size: int = 64
    seed: int = 0
    version: int = field(default=1)

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.num_train, "validation": self.num_validation, "test": self.num_test}


def _fits(obj: SceneObject, others: list[SceneObject], n: int) -> bool:
    """Whether ``obj`` lies inside an ``n``-pixel image and clear of ``others``."""
    r = SIZES[obj.size] * n / 64
    inside = r + 1 <= obj.x <= n - r - 1 and r + 1 <= obj.y <= n - r - 1
    apart = all(np.hypot(obj.x - o.x, obj.y - o.y) > r + SIZES[o.size] * n / 64 + 2 for o in others)
    return inside and apart


def _name(obj: SceneObject, others: list[SceneObject], first: tuple[str, ...]) -> str:
    """The shortest phrase naming ``obj`` among ``others``: the words of ``first`` (e.g. its colour and shape, which
    the instruction is about), then its other attributes until no other object fits."""
    words = list(first)
    for attribute in ("color", "size", "shape"):
        if all(any(getattr(o, a) != getattr(obj, a) for a in words) for o in others):
            break
        if attribute not in words:
            words.append(attribute)
    order = [a for a in ("size", "color", "shape") if a in words]
    return " ".join(getattr(obj, a) for a in order)


def edit_scene(objects: list[SceneObject], rng: np.random.Generator, n: int
               ) -> tuple[list[SceneObject], str, str, int] | None:
    """One edit of a scene: the edited objects, the instruction, the attribute and the object's index; ``None``
    when the drawn edit would not fit (a larger object over the border or the other object: drawn again)."""
    k = int(rng.integers(len(objects)))
    obj, others = objects[k], [o for j, o in enumerate(objects) if j != k]
    edit = EDITS[int(rng.integers(len(EDITS)))]
    values = [v for v in {"color": COLORS, "shape": SHAPES, "size": SIZES}[edit] if v != getattr(obj, edit)]
    new = dataclasses.replace(obj, **{edit: values[int(rng.integers(len(values)))]})
    if not _fits(new, others, n):
        return None
    if any((o.shape, o.color, o.size) == (new.shape, new.color, new.size) for o in others):
        return None  # two objects alike: the caption could not tell them apart
    if edit == "shape":
        instruction = f"turn the {_name(obj, others, ('shape',))} into a {new.shape}"
    else:
        instruction = f"make the {_name(obj, others, (edit, 'shape'))} {getattr(new, edit)}"
    edited = [new if j == k else o for j, o in enumerate(objects)]
    return edited, instruction, edit, k


def _png(pixels: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return {"bytes": buffer.getvalue(), "path": None}


def generate_split(config: EditConfig, split: str, progress: bool = True) -> dict[str, list]:
    """Generate one split as columns (see the module docstring)."""
    from tqdm.auto import tqdm

    scenes = ShapesConfig(image_size=config.image_size, seed=config.seed)
    columns: dict[str, list] = {k: [] for k in ("image", "target", "instruction", "text", "source_text", "edit",
                                                "edited", "id")}
    for i in tqdm(range(config.split_sizes()[split]), desc=f"shapes_edit/{split}", disable=not progress,
                  leave=False):
        rng = np.random.default_rng([config.seed, 7, SPLITS.index(split), i])
        drawn, attempt = None, 0
        while drawn is None:  # a few draws on scene i; where none fits, another scene far past the split's own
            background, objects, relation = scene_parts(scenes, split, i + 1_000_003 * attempt)
            drawn = next((d for d in (edit_scene(objects, rng, config.image_size) for _ in range(20)) if d), None)
            attempt += 1
        edited, instruction, edit, k = drawn
        columns["image"].append(_png(render_scene(background, objects)))
        columns["target"].append(_png(render_scene(background, edited)))
        columns["instruction"].append(instruction)
        columns["text"].append(scene_captions(edited, relation)[0])
        columns["source_text"].append(scene_captions(objects, relation)[0])
        columns["edit"].append(edit)
        columns["edited"].append(str(k))
        columns["id"].append(f"shapes_edit-{split}-{i:06d}")
    return columns


FEATURES = datasets.Features({"image": datasets.Image(), "target": datasets.Image(),
                              **{k: datasets.Value("string") for k in ("instruction", "text", "source_text", "edit",
                                                                      "edited", "id")}})
if "shapes_edit" not in EMBEDDED:
    register_embedded("shapes_edit", EmbeddedSet(EditConfig, generate_split, FEATURES))
