"""Words of questions and schema names: stems, overlaps, mentions, the values a question cites."""

from __future__ import annotations

import re

from tui.server.engines.schema_parse import name_words

_QWORD = re.compile(r"[A-Za-z0-9]+")
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|“([^”]+)”")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\w)")
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "twenty": 20}


def stem(word: str) -> str:
    """A crude plural/suffix stem so that ``singers`` meets ``singer`` and ``cities`` ``city``."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def question_words(question: str) -> set[str]:
    """Stemmed lower-case words of a question."""
    return {stem(w) for w in _QWORD.findall(question)}


def name_stems(name: str) -> list[str]:
    """Stemmed words of an identifier."""
    return [stem(w) for w in name_words(name)]


def name_similarity(a: str, b: str) -> float:
    """1 for equal names, else the Jaccard overlap of their stemmed words."""
    if a.lower() == b.lower():
        return 1.0
    wa, wb = set(name_stems(a)), set(name_stems(b))
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def mention(name: str, words: set[str], table: str = "") -> float:
    """Share of a name's words that the question uses (``id``, and for a column the words of
    its own ``table``'s name, ignored)."""
    skip = {"id", *name_stems(table)}
    parts = [w for w in name_stems(name) if w not in skip] or name_stems(name)
    return sum(w in words for w in parts) / len(parts) if parts else 0.0


def quoted_values(question: str) -> list[str]:
    """Values the question puts in quotes, in order."""
    return [next(g for g in m if g) for m in _QUOTED.findall(question)]


def numbers(question: str) -> list[float]:
    """Numbers the question cites, digits first, then number words."""
    found = [float(n) for n in _NUMBER.findall(question)]
    return found + [float(NUMBER_WORDS[w]) for w in _QWORD.findall(question.lower())
                    if w in NUMBER_WORDS]
