"""The docs link only to what exists: every relative Markdown link and every repository path written in code
style (``docs/…``, ``experiments/…``, ``multimodal_kit/…`` …) in the README, docs/ and benchmarks/ names a file or
folder of this checkout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([*REPO.glob("*.md"), *REPO.glob("docs/**/*.md"), *REPO.glob("benchmarks/*.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(r"`((?:docs|experiments|benchmarks|multimodal_kit|examples|tests)/[\w/.\-]+\.(?:py|md|yaml|png))`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_and_path_of_a_page_exists(page: Path) -> None:
    text = page.read_text()
    missing = [m for m in LINK.findall(text) if not m.startswith(("http", "mailto")) and m.split("#")[0]
               and not (page.parent / m.split("#")[0]).exists()]
    missing += [m for m in PATH.findall(text) if not (REPO / m).exists()]
    assert not missing, f"{page.relative_to(REPO)} names what does not exist: {missing}"
