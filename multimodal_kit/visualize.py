"""Pictures people would rather look at than read: image grids with text under each image."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """uint8 (3, H, W) → PIL; a float image is min–max scaled first."""
    if image.dtype != torch.uint8:
        lo, hi = image.min(), image.max()
        image = ((image - lo) / (hi - lo).clamp(min=1e-8) * 255).round().to(torch.uint8)
    return Image.fromarray(image.permute(1, 2, 0).cpu().numpy())


def captioned_grid(images: Sequence[Image.Image], captions: Sequence[str], columns: int = 4, cell: int = 160,
                   text_lines: int = 4) -> Image.Image:
    """A grid of images, each scaled to ``cell`` pixels wide, with its (wrapped) caption below it."""
    font = ImageFont.load_default(size=11)
    line_height = 13
    rows = (len(images) + columns - 1) // columns
    height = cell + text_lines * line_height + 6
    grid = Image.new("RGB", (columns * cell, max(rows, 1) * height), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, caption) in enumerate(zip(images, captions, strict=True)):
        x, y = (i % columns) * cell, (i // columns) * height
        grid.paste(image.convert("RGB").resize((cell - 4, cell - 4), Image.NEAREST), (x + 2, y + 2))
        lines = [ln for part in caption.split("\n") for ln in textwrap.wrap(part, width=cell // 6) or [""]]
        for j, line in enumerate(lines[:text_lines]):
            draw.text((x + 3, y + cell + 2 + j * line_height), line, fill="black", font=font)
    return grid
