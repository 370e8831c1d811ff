"""A word filter for Russian obscenity (мат): it flags a text for a moderator and
never rejects it, because a filter errs both ways and a person decides.

Each pattern is a regular expression matched at the start of every word, after the
word is normalised: lower case, ё as е, Latin and digit look-alikes as the Cyrillic
letters they imitate ("xyй", "3а"), and runs of one letter as one ("бляяя"). The
default patterns are the roots of мат with the prefixes verbs take; a city replaces
them with a file of its own (one pattern per line, `#` starts a comment).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# Vowel-final prefixes join a root directly ("заеб"); consonant-final ones take ъ
# before е ("съеб", "подъеб"), which is what keeps "себе" and "обед" out.
_VOWEL_PREFIXES = "за|на|по|до|вы|при|про|пере|недо|у|о"
_CONSONANT_PREFIXES = "с|в|под|от|об|раз|рас|из"
_ANY_PREFIX = f"(?:не)?(?:{_VOWEL_PREFIXES}|{_CONSONANT_PREFIXES})?"

DEFAULT_PATTERNS: tuple[str, ...] = (
    f"(?:не)?(?:{_VOWEL_PREFIXES}|(?:{_CONSONANT_PREFIXES})ъ)?еб(?:[аеиклнуоы]|$)",
    f"{_ANY_PREFIX}ху[йяеию]",
    f"{_ANY_PREFIX}п[ие]зд",
    "бля(?:$|д|т|х)",
    "муд(?:ак|ач|ил|озвон)",
    "пид(?:ор|ар|р)",
    "залуп",
    "шлюх",
    "сук(?:а|и)$",
    "суч(?:к|ар|ий|ья)",
    "г[ао]нд[оа]н",
    "дроч",
    "долба?[оа]?еб",
    "мандав[оа]ш",
)

# Letters and digits that pass for Cyrillic ones in a word meant to slip through.
_LOOKALIKES = str.maketrans("aeopcxyk3064ё", "аеорсхукзобче")
_WORD = re.compile(r"[^\W_]+")
_REPEATS = re.compile(r"(.)\1+")


def normalize(word: str) -> str:
    """The form patterns are matched against (see the module's docstring)."""
    return _REPEATS.sub(r"\1", word.lower().translate(_LOOKALIKES))


class WordFilter:
    """Which word of a text, if any, a moderator should look at."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._compiled = re.compile("|".join(f"(?:{p})" for p in self.patterns))

    @classmethod
    def from_file(cls, path: str | None) -> WordFilter:
        """The patterns of the file at `path`, or the defaults when `path` is None."""
        if path is None:
            return cls(DEFAULT_PATTERNS)
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return cls(p for line in lines if (p := line.split("#", 1)[0].strip()))

    def flagged_word(self, *texts: str | None) -> str | None:
        """The first word of `texts` that matches a pattern, as written; None if none does."""
        for text in texts:
            for word in _WORD.findall(text or ""):
                if self._compiled.match(normalize(word)):
                    return str(word)
        return None
