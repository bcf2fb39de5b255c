"""Text-guided image editing: an image and an instruction in, the edited image out (a FiLM U-Net), on the
embedded ``shapes_edit`` set this package registers; named by import path in
``experiments/editing_image_caption.yaml``; see docs/methods/editing.md."""

from multimodal_kit.tasks.editing import data  # noqa: F401  (registers --data.source shapes_edit)
from multimodal_kit.tasks.editing.method import TextGuidedEditing
from multimodal_kit.tasks.editing.samples import EditSamples

__all__ = ["EditSamples", "TextGuidedEditing"]
