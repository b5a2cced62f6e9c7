"""Every relative link of README.md, CONTRIBUTING.md and docs/ leads somewhere: the file (or
folder) exists and, for `#anchor`, a heading of that page has that anchor as GitHub makes it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, ...


def pages() -> list[Path]:
    return [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]


def _prose(text: str) -> tuple[list[str], str]:
    """The page's headings and its text outside fenced code blocks and code spans."""
    headings, kept, fence = [], [], ""
    for line in text.splitlines():
        marker = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if marker and (not fence or marker[1].startswith(fence)):
            fence = "" if fence else marker[1][:3]
            continue
        if fence:
            continue
        heading = HEADING.match(line)
        if heading:
            headings.append(heading[2])
        kept.append(line)
    return headings, CODE_SPAN.sub(" ", "\n".join(kept))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lowercased, punctuation dropped (letters,
    digits, `_`, `-` and spaces stay), each space a `-`."""
    text = CODE_SPAN.sub(lambda m: m[2], heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"(\*\*|__|\*|~~)", "", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of the page; a repeated heading gets `-1`, `-2`, ... as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _prose(page.read_text())[0]:
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def dead_links(page: Path) -> list[str]:
    dead = []
    for target in LINK.findall(_prose(page.read_text())[1]):
        if EXTERNAL.match(target):
            continue
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(REPO) if page.is_relative_to(REPO) else page}: {target}"
        if not goal.exists():
            dead.append(f"{where} (no such file)")
        elif anchor and (goal.suffix != ".md" or anchor not in anchors(goal)):
            dead.append(f"{where} (no heading with that anchor)")
    return dead


def test_the_pages_have_links_to_follow() -> None:
    targets = [t for page in pages() for t in LINK.findall(_prose(page.read_text())[1])]
    assert any("#" in t and not EXTERNAL.match(t) for t in targets)
    assert any("docs/" in t for t in targets)


def test_no_relative_link_is_dead() -> None:
    assert [dead for page in pages() for dead in dead_links(page)] == []


def test_every_docs_page_is_in_the_index() -> None:
    index = REPO / "docs" / "README.md"
    linked = {
        (index.parent / t.partition("#")[0]).resolve()
        for t in LINK.findall(_prose(index.read_text())[1])
        if not EXTERNAL.match(t)
    }
    missing = [p.relative_to(REPO) for p in pages()[2:] if p != index and p not in linked]
    assert missing == []


def test_anchors_follow_githubs_rules() -> None:
    assert slug("Differences from SageMaker HyperPod v1 recipes") == (
        "differences-from-sagemaker-hyperpod-v1-recipes"
    )
    assert slug("HyperPod EKS (HyperPodPyTorchJob)") == "hyperpod-eks-hyperpodpytorchjob"
    assert slug("Slurm: `cluster/slurm.yaml`") == "slurm-clusterslurmyaml"
    assert slug("Add a **backend**, [see](x.md)") == "add-a-backend-see"
    assert slug("sm_jobs — SageMaker") == "sm_jobs--sagemaker"


def test_a_dead_file_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Part two\n\n## Part two\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n"
        "[ok](other.md#part-two) [ok](other.md#part-two-1) [ok](#title) [ok](https://x.org/#y)\n"
        "[gone](missing.md) [no anchor](other.md#part-three) [not here](#nowhere)\n"
        "`[in code](missing-too.md)`\n\n```\n[in a block](missing-three.md)\n```\n"
    )
    assert dead_links(page) == [
        f"{page}: missing.md (no such file)",
        f"{page}: other.md#part-three (no heading with that anchor)",
        f"{page}: #nowhere (no heading with that anchor)",
    ]
