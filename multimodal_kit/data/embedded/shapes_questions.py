"""The embedded ``shapes_qa`` set: questions with one-word answers about each ``shapes`` scene, offline.

The scenes are those of ``shapes`` (same generator, same seeds, same splits); each gets ``questions_per_scene``
different questions (one row each, the scene's image repeated), each from a family drawn uniformly, asked from the
scene parameters the generator keeps:

| family | example | answers |
|---|---|---|
| ``color`` | what color is the triangle? | the six colours |
| ``shape`` | what shape is the large blue object? | the four shapes |
| ``relation`` | what color is the object left of the red circle? | colours or shapes |
| ``count`` | how many objects are there? | one, two |
| ``exists`` | is there a green square? | yes, no (half each) |
| ``size`` | what size is the purple diamond? | small, large |

An object is named by the fewest of its other attributes that single it out (never the one asked about); a
family that cannot be asked of a scene (a relation in a one-object scene), or a question already asked of it, is
drawn again. Answers are balanced within each family by the scenes themselves, so answering from the question
alone scores near chance. The questions of scene ``i`` of split ``s`` draw from one generator seeded with
``(seed, s, i, 1)``, in turn: the first is the same whatever ``questions_per_scene`` is.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from multimodal_kit.data.embedded.shapes import (
    COLORS,
    INVERSE,
    SHAPES,
    SceneObject,
    ShapesConfig,
    sample_scene,
)
from multimodal_kit.errors import ConfigError

FAMILIES = ("color", "shape", "relation", "count", "exists", "size")
NUMBERS = {1: "one", 2: "two"}


@dataclass(frozen=True)
class ShapesQuestionsConfig(ShapesConfig):
    """The ``shapes`` scene options, plus which question families are asked.

    Args:
        families: the question families drawn from (uniformly).
        questions_per_scene: different questions asked of each scene, one row each (a one-object scene has few
            beyond its ``exists`` ones, so those make up more of its later questions). More questions per
            scene teach the image encoder more per image: with one, a model learns the 10,000 training
            scenes' answers by heart long before it learns to see shapes.
    """

    families: tuple[str, ...] = FAMILIES
    questions_per_scene: int = 5
    version: int = field(default=1)


def name(obj: SceneObject, others: list[SceneObject], hidden: str) -> str | None:
    """The shortest description of ``obj`` that tells it from ``others`` without its attribute ``hidden``
    (``"circle"``, ``"red object"``, ``"large blue square"``); ``None`` if none does."""
    options = [("shape",), ("color",), ("size", "shape"), ("color", "shape"), ("size", "color"),
               ("size", "color", "shape")]
    for attrs in options:
        if hidden in attrs:
            continue
        if all(any(getattr(obj, a) != getattr(o, a) for a in attrs) for o in others):
            words = [getattr(obj, a) for a in attrs]
            return " ".join(words if "shape" in attrs else [*words, "object"])
    return None


def ask(family: str, objects: list[SceneObject], relation: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """A question of ``family`` about the scene and its answer, or ``None`` if the scene cannot answer one."""
    target = objects[int(rng.integers(len(objects)))]
    others = [o for o in objects if o is not target]
    if family in ("color", "shape", "size"):
        described = name(target, others, family)
        if described is None:
            return None
        question = {"color": f"what color is the {described}?", "shape": f"what shape is the {described}?",
                    "size": f"what size is the {described}?"}[family]
        return question, getattr(target, family)
    if family == "count":
        return "how many objects are there?", NUMBERS[len(objects)]
    if family == "exists":
        present = {(o.color, o.shape) for o in objects}
        if rng.random() < 0.5:
            color, shape = target.color, target.shape
        else:
            absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
            color, shape = absent[int(rng.integers(len(absent)))]
        return f"is there a {color} {shape}?", "yes" if (color, shape) in present else "no"
    if family == "relation" and len(objects) == 2:
        a, b = objects  # a <relation> b
        if rng.random() < 0.5:  # ask for a: "what ... is <relation> the <b>"
            subject, anchor, said = a, b, relation
        else:  # ask for b: "what ... is <inverse> the <a>"
            subject, anchor, said = b, a, INVERSE[relation]
        attribute = "color" if rng.random() < 0.5 else "shape"
        described = name(anchor, [subject], "")
        return f"what {attribute} is the object {said} the {described}?", getattr(subject, attribute)
    return None


def scene_questions(config: ShapesQuestionsConfig, split: str, index: int
                    ) -> tuple[np.ndarray, list[tuple[str, str, str]]]:
    """Scene ``index`` of ``split`` (as ``shapes`` draws it) with its ``questions_per_scene`` different
    questions: the image and ``[(question, answer, family), ...]``."""
    from multimodal_kit.data.embedded.shapes import SPLITS

    if config.questions_per_scene < 1:
        raise ConfigError(f"--data.embedded_options questions_per_scene must be at least 1, got "
                          f"{config.questions_per_scene}")
    pixels, objects, relation = sample_scene(config, split, index)
    rng = np.random.default_rng([config.seed, SPLITS.index(split), index, 1])
    asked: dict[str, tuple[str, str, str]] = {}
    for _ in range(1000 * config.questions_per_scene):  # a one-object scene has ~30 distinct questions
        family = config.families[int(rng.integers(len(config.families)))]
        found = ask(family, objects, relation, rng)
        if found is not None and found[0] not in asked:
            asked[found[0]] = (*found, family)
            if len(asked) == config.questions_per_scene:
                return pixels, list(asked.values())
    raise ConfigError(f"scene {index} of {split} has fewer than {config.questions_per_scene} different questions "
                      f"in the families {config.families}: ask fewer per scene (--data.embedded_options "
                      "questions_per_scene) or draw from more families")


def sample_question(config: ShapesQuestionsConfig, split: str, index: int
                    ) -> tuple[np.ndarray, str, str, str]:
    """Scene ``index`` of ``split`` with its first question: image, question, answer, family."""
    pixels, questions = scene_questions(dataclasses.replace(config, questions_per_scene=1), split, index)
    return pixels, *questions[0]


def generate_split(config: ShapesQuestionsConfig, split: str, progress: bool = True) -> dict[str, list]:
    """One split as columns, a row per question: image (PNG bytes), question, answer, family, id
    (``shapes_qa-<split>-<scene>`` with one question per scene, ``...-<scene>-<question>`` with more)."""
    from tqdm.auto import tqdm

    columns: dict[str, list] = {k: [] for k in ("image", "question", "answer", "family", "id")}
    for i in tqdm(range(config.split_sizes()[split]), desc=f"shapes_qa/{split}", disable=not progress,
                  unit="img", leave=False):
        pixels, questions = scene_questions(config, split, i)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        for j, (question, answer, family) in enumerate(questions):
            columns["image"].append({"bytes": buffer.getvalue(), "path": None})
            columns["question"].append(question)
            columns["answer"].append(answer)
            columns["family"].append(family)
            columns["id"].append(f"shapes_qa-{split}-{i:06d}" + (f"-{j}" if config.questions_per_scene > 1 else ""))
    return columns
