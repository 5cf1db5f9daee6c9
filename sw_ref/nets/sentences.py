"""Real English sentences that ship with Python: the prose of ``pydoc_data.topics``.

``pydoc_data.topics`` holds the language reference sections that ``help()`` shows
(about 80 topics, 460 k characters on Python 3.11). Prose paragraphs are kept (not
headings, grammar rules, indented code or lists), split into sentences by a fixed
rule, filtered to plain sentences of 8-40 words, and de-duplicated. Each sentence
goes to the calibration or the test set by a hash of its text (CRC-32), so the sets
are disjoint, independent of the order of the topics, and reproducible; a sentence
that a later Python adds or drops moves no other sentence between the sets.

The text differs between Python versions; ``fingerprint`` names the exact sets
(the reports record it with the Python version).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

__all__ = ["Split", "all_sentences", "fingerprint", "split"]

MIN_WORDS, MAX_WORDS = 8, 40
_HEADING = re.compile(r"^[*=\-~^\"]{3,}$")
_ABBREV = ("e.g.", "i.e.", "etc.", "vs.", "cf.")
# A sentence ends at . ! ? (after a word or a closing quote/paren), before a capital.
_BOUNDARY = re.compile(r"(?<=[a-z0-9)\"'*\]”][.!?])\s+(?=[A-Z\"(*])")
_PLAIN = re.compile(r"^[A-Z\"*][A-Za-z0-9 ,;:'\"()\-/.*_\[\]+=%’“”]*[.]$")


def _paragraphs(text: str):
    """Blocks of unindented prose lines, each joined into one line."""
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        if any(not ln or ln[0].isspace() for ln in lines):
            continue  # code, grammar, indented notes and lists
        if any(_HEADING.match(ln.strip()) for ln in lines):
            continue
        if lines[0].lstrip().startswith(("*", "-", "+", "|", ">>>", "...")):
            continue
        text = ""
        for ln in (ln.strip() for ln in lines):  # a line ending in "-" was hyphenated
            text += ln if text.endswith("-") or not text else " " + ln
        yield text


def _sentences(paragraph: str):
    guarded = paragraph
    for i, a in enumerate(_ABBREV):
        guarded = guarded.replace(a, f"\x00{i}\x00")
    for s in _BOUNDARY.split(guarded):
        for i, a in enumerate(_ABBREV):
            s = s.replace(f"\x00{i}\x00", a)
        yield re.sub(r"\s+", " ", s).strip()


def _keep(s: str) -> bool:
    words = s.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or not _PLAIN.match(s):
        return False
    if s.count('"') % 2 or s.count("(") != s.count(")"):
        return False
    letters = sum(ch.isalpha() for ch in s)
    return letters >= 0.75 * len(s.replace(" ", ""))  # prose, not a list of names


def all_sentences() -> list[str]:
    """Every kept sentence, de-duplicated, in topic order (topics sorted by name)."""
    from pydoc_data.topics import topics

    seen, out = set(), []
    for name in sorted(topics):
        for para in _paragraphs(topics[name]):
            for s in _sentences(para):
                if _keep(s) and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


@dataclass(frozen=True)
class Split:
    calibration: list[str]
    test: list[str]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.calibration + ["\x00"] + self.test)


def split(n_calib: int = 128, n_test: int = 512, calib_share: int = 4) -> Split:
    """Disjoint calibration and test sentences.

    A sentence is a calibration candidate if crc32(text) % calib_share == 0, else a
    test candidate; each list is ordered by (crc32, text) and cut to its size.
    Raises if there are not enough sentences.
    """
    calib, test = [], []
    for s in all_sentences():
        h = zlib.crc32(s.encode())
        (calib if h % calib_share == 0 else test).append((h, s))
    if len(calib) < n_calib or len(test) < n_test:
        raise ValueError(
            f"pydoc_data.topics gives {len(calib)} calibration and {len(test)} test sentences; "
            f"asked for {n_calib} and {n_test}"
        )
    return Split([s for _, s in sorted(calib)[:n_calib]], [s for _, s in sorted(test)[:n_test]])


def fingerprint(sentences: list[str]) -> str:
    """A short SHA-256 of the sentences, in order."""
    return hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:12]
