"""A small reader of the WordNet 3.x database files (Debian's wordnet-base: /usr/share/wordnet/).

Facts used (wndb(5WN), morphy(7WN)):
- index.<pos> (pos = noun, verb, adj, adv): lines starting with two spaces are the licence;
  each other line is "lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt
  synset_offset..." with the offsets in order of sense frequency; lemmas are lower case
  with "_" for spaces.
- data.<pos>: the synset at byte offset O is the line starting at O: "offset lex_filenum
  ss_type w_cnt word lex_id [word lex_id...] ..." where w_cnt is two hex digits;
  adjective words may end in a syntactic marker "(a)", "(p)" or "(ip)".
- <pos>.exc: "inflected base..." irregular forms (mice -> mouse); regular inflections are
  undone by morphy's suffix rules (nouns: -s, -ses, -xes, -zes, -ches, -shes, -men, -ies;
  verbs: -s, -ies, -es, -ed, -ing; adjectives: -er, -est).
The folder is found from WNSEARCHDIR (WordNet's own variable), else /usr/share/wordnet.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path("/usr/share/wordnet")
DIR_ENV = "WNSEARCHDIR"
POS_FILES: dict[str, str] = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
SUFFIX_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
_MARKER = re.compile(r"\((a|p|ip)\)$")


@dataclass(frozen=True)
class IndexEntry:
    lemma: str
    pos: str  # n, v, a or r
    offsets: tuple[int, ...]  # synsets in data.<pos>, most frequent sense first
    tagged_senses: int  # senses seen in the tagged corpus: how common the word is in this pos


def find_wordnet(folder: str | os.PathLike[str] | None = None) -> Path | None:
    """The WordNet database folder (given, WNSEARCHDIR or /usr/share/wordnet), or None if absent."""
    candidates = [Path(folder)] if folder else []
    if not folder and os.environ.get(DIR_ENV):
        candidates.append(Path(os.environ[DIR_ENV]))
    if not folder:
        candidates.append(DEFAULT_DIR)
    for path in candidates:
        if (path / "index.noun").is_file() and (path / "data.noun").is_file():
            return path
    return None


class WordNet:
    """Look up lemmas and synonyms; index files are read lazily, one part of speech at a time."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._index: dict[str, dict[str, IndexEntry]] = {}
        self._exceptions: dict[str, dict[str, tuple[str, ...]]] = {}

    def entry(self, lemma: str, pos: str) -> IndexEntry | None:
        """The index entry of `lemma` ("ray_of_light" or "ray of light") in `pos`, if any."""
        return self._index_of(pos).get(lemma.lower().replace(" ", "_"))

    def base_forms(self, word: str, pos: str) -> list[str]:
        """Lemmas `word` may be an inflection of in `pos` (itself first when it is one)."""
        word = word.lower()
        forms = [word] if self.entry(word, pos) else []
        forms += [b for b in self._exceptions_of(pos).get(word, ()) if b not in forms]
        for suffix, ending in SUFFIX_RULES[pos]:
            if word.endswith(suffix) and len(word) > len(suffix):
                base = word[: len(word) - len(suffix)] + ending
                if base not in forms and self.entry(base, pos):
                    forms.append(base)
        return [f for f in forms if self.entry(f, pos)]

    def synset_words(self, offset: int, pos: str) -> list[str]:
        """The words of the synset at `offset` of data.<pos>, with spaces for underscores."""
        with open(self.folder / f"data.{POS_FILES[pos]}", "rb") as f:
            f.seek(offset)
            fields = f.readline().decode("utf-8", errors="replace").split()
        count = int(fields[3], 16)
        words = fields[4 : 4 + 2 * count : 2]
        return [_MARKER.sub("", w).replace("_", " ") for w in words]

    def main_pos(self, word: str) -> tuple[str, str] | None:
        """(lemma, pos) of `word`'s most common use: the pos whose lemma has most tagged senses."""
        best: tuple[int, str, str] | None = None
        for pos in POS_FILES:
            for lemma in self.base_forms(word, pos):
                entry = self.entry(lemma, pos)
                score = entry.tagged_senses if entry else -1
                if best is None or score > best[0]:
                    best = (score, lemma, pos)
        return None if best is None else (best[1], best[2])

    def synonyms(self, word: str, *, senses: int = 1, limit: int = 3) -> list[str]:
        """Up to `limit` synonyms of `word` from its `senses` most common senses in its main pos."""
        found = self.main_pos(word)
        if found is None:
            return []
        lemma, pos = found
        entry = self.entry(lemma, pos)
        assert entry is not None
        out: list[str] = []
        for offset in entry.offsets[:senses]:
            for synonym in self.synset_words(offset, pos):
                low = synonym.lower()
                if low not in (word.lower(), lemma.replace("_", " ")) and low not in out:
                    out.append(low)
        return out[:limit]

    def _index_of(self, pos: str) -> dict[str, IndexEntry]:
        if pos not in self._index:
            entries: dict[str, IndexEntry] = {}
            path = self.folder / f"index.{POS_FILES[pos]}"
            if path.is_file():
                for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    if text.startswith("  ") or not text.strip():
                        continue
                    entry = _parse_index_line(text)
                    if entry is not None:
                        entries[entry.lemma] = entry
            self._index[pos] = entries
        return self._index[pos]

    def _exceptions_of(self, pos: str) -> dict[str, tuple[str, ...]]:
        if pos not in self._exceptions:
            table: dict[str, tuple[str, ...]] = {}
            path = self.folder / f"{POS_FILES[pos]}.exc"
            if path.is_file():
                for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    parts = text.split()
                    if len(parts) >= 2:
                        table[parts[0]] = tuple(parts[1:])
            self._exceptions[pos] = table
        return self._exceptions[pos]


def _parse_index_line(text: str) -> IndexEntry | None:
    fields = text.split()
    try:
        lemma, pos, synset_cnt, p_cnt = fields[0], fields[1], int(fields[2]), int(fields[3])
        rest = fields[4 + p_cnt :]
        tagged = int(rest[1])
        offsets = tuple(int(x) for x in rest[2 : 2 + synset_cnt])
    except (IndexError, ValueError):
        return None
    return IndexEntry(lemma=lemma, pos=pos, offsets=offsets, tagged_senses=tagged)
