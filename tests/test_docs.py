"""The front door works: every relative link in README.md and docs/ resolves (file and
heading), and every command of the README's quick start is a real make target or module."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def _links(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [
        line.strip()
        for line in section.splitlines()
        if line.startswith("    ") and line.split()[0] in ("make", "python")
    ]


def test_quick_start_commands_exist():
    commands = _quick_start_commands()
    assert any(c.startswith("make demo") for c in commands)
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for command in commands:
        words = command.split("#")[0].split()
        if words[0] == "make":
            assert words[1] in targets, command
        else:
            assert words[1] == "-m" and importlib.util.find_spec(words[2]) is not None, command


def test_readme_stays_the_front_door():
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


def test_make_help_lists_every_target():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M)) - {"iverilog-check", "tools-warm"}
    help_text = makefile.split("\nhelp:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"make ([a-z][\w-]*)", help_text))
    assert targets - listed == set(), targets - listed
