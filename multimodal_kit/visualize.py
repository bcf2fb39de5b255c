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
                   text_lines: int | None = None) -> Image.Image:
    """A grid of images, each scaled to ``cell`` pixels wide, with its (wrapped) caption below it; ``text_lines``
    caps the lines under each image (default: as many as the longest caption needs)."""
    font = ImageFont.load_default(size=11)
    line_height = 13
    wrapped = [[ln for part in caption.split("\n") for ln in textwrap.wrap(part, width=cell // 6) or [""]]
               for caption in captions]
    text_lines = text_lines if text_lines is not None else max((len(w) for w in wrapped), default=1)
    rows = (len(images) + columns - 1) // columns
    height = cell + text_lines * line_height + 6
    grid = Image.new("RGB", (columns * cell, max(rows, 1) * height), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, lines) in enumerate(zip(images, wrapped, strict=True)):
        x, y = (i % columns) * cell, (i // columns) * height
        grid.paste(image.convert("RGB").resize((cell - 4, cell - 4), Image.NEAREST), (x + 2, y + 2))
        for j, line in enumerate(lines[:text_lines]):
            draw.text((x + 3, y + cell + 2 + j * line_height), line, fill="black", font=font)
    return grid


def attention_overlay(image: Image.Image, weights: torch.Tensor, size: int) -> Image.Image:
    """``image`` with attention over its regions as a heat overlay; weights (N,) for a square grid of N regions
    (upsampled bilinearly), else shown as a strip under the image."""
    import math

    base = image.convert("RGB").resize((size, size), Image.BICUBIC)
    n = weights.numel()
    side = math.isqrt(n)
    if side * side == n:
        grid = weights.float().view(1, 1, side, side)
    else:  # not an image map: a 1×N strip
        grid = weights.float().view(1, 1, 1, n)
    heat = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    heat = (heat / heat.max().clamp(min=1e-8)).clamp(0, 1)
    pixels = torch.from_numpy(__import__("numpy").asarray(base).copy()).float()  # (S, S, 3)
    dimmed = pixels * (0.25 + 0.75 * heat.unsqueeze(-1))  # bright where attended
    dimmed[..., 0] = dimmed[..., 0] * 0.7 + 255 * 0.3 * heat  # and reddish
    return Image.fromarray(dimmed.clamp(0, 255).byte().numpy())


def attention_strip(image: Image.Image, words: Sequence[str], weights: torch.Tensor, cell: int = 96,
                    max_words: int = 16, caption: str = "") -> Image.Image:
    """One row: the image (with ``caption`` under it: a question), then one cell per generated word (the first
    ``max_words``) with its attention (T, N)."""
    words = list(words)[:max_words]
    cells = [image.convert("RGB").resize((cell, cell), Image.BICUBIC)]
    cells += [attention_overlay(image, weights[t], cell) for t in range(len(words))]
    return captioned_grid(cells, [caption, *words], columns=len(cells), cell=cell, text_lines=3 if caption else 1)


# anchors of the viridis colour map (low → high), interpolated linearly
_VIRIDIS = torch.tensor([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
                        dtype=torch.float32)


def colorize(values: torch.Tensor) -> torch.Tensor:
    """values (H, W), any range → uint8 (H, W, 3), min–max scaled through the viridis colour map."""
    values = values.detach().float().cpu()
    lo, hi = values.min(), values.max()
    scaled = ((values - lo) / (hi - lo).clamp(min=1e-8)) * (len(_VIRIDIS) - 1)
    index = scaled.floor().long().clamp(max=len(_VIRIDIS) - 2)
    frac = (scaled - index).unsqueeze(-1)
    return (_VIRIDIS[index] * (1 - frac) + _VIRIDIS[index + 1] * frac).round().to(torch.uint8)


def spectrogram_image(features: torch.Tensor, height: int = 96, width: int | None = None) -> Image.Image:
    """Log-mel frames (T, n_mels) → a picture, time left to right, low frequencies at the bottom."""
    pixels = colorize(features.T.flip(0))  # (n_mels, T, 3)
    image = Image.fromarray(pixels.numpy())
    return image.resize((width or max(2 * features.shape[0], 64), height), Image.NEAREST)


def attention_heatmap(features: torch.Tensor, words: Sequence[str], weights: torch.Tensor, row: int = 18,
                      label_width: int = 72, title: str = "") -> Image.Image:
    """The spectrogram (T, n_mels) on top and, under it, one row per generated word with its attention (L, N)
    over the encoder's N frames, stretched to the spectrogram's time axis: a tokens × frames heatmap. ``title``
    (wrapped into the label column, at most six lines) replaces the spectrogram's label "log-mel"."""
    words = list(words)
    spectrogram = spectrogram_image(features)
    width = spectrogram.width
    heat = colorize(weights[: len(words)].float()) if words else torch.zeros(0, 1, 3, dtype=torch.uint8)
    sheet = Image.new("RGB", (label_width + width, spectrogram.height + row * len(words) + 4), "white")
    sheet.paste(spectrogram, (label_width, 0))
    if words:
        rows = Image.fromarray(heat.numpy()).resize((width, row * len(words)), Image.NEAREST)
        sheet.paste(rows, (label_width, spectrogram.height + 4))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    label = textwrap.wrap(title, width=11)[:6] or ["log-mel"]
    for j, line in enumerate(label):
        draw.text((2, spectrogram.height // 2 - 6 * len(label) + 12 * j), line, fill="black", font=font)
    for i, word in enumerate(words):
        draw.text((2, spectrogram.height + 4 + i * row + 3), word[:11], fill="black", font=font)
    return sheet


def stack_vertically(images: Sequence[Image.Image]) -> Image.Image:
    """Pictures one under another on a white sheet as wide as the widest."""
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    return sheet
