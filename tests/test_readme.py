"""The front page a reader opens: the answer and Fig. 2 on its first screen, short, and every link it gives resolves."""
import re

import pytest

from multitune_lib import paths

ROOT = paths.project_root()
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_the_first_screen_holds_the_answer_and_fig2():
    first = "\n".join(README.splitlines()[:60])
    assert "## The answer" in first
    image = re.search(r"!\[Fig\. 2[^\]]*\]\(([^)]+)\)", first)
    assert image, "Fig. 2 is not shown inline in the README's first 60 lines"
    assert (ROOT / image.group(1)).is_file(), image.group(1)


def test_the_readme_is_a_few_screens():
    assert len(README.splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    for target, _ in LINK.findall(page.read_text()):
        if not re.match(r"[a-z]+:", target):
            assert (page.parent / target).exists(), f"{page.name}: {target}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_speaks_of_what_a_reader_has(page):
    """No folder beside the checkout that only the machines which made the study had."""
    assert "../shared" not in page.read_text()
