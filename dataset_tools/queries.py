"""Search terms of a lyric line, and filling a set's queries from its lyrics (`lyriscope queries`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from lyriscope.dataset_tools.wordnet import WordNet, find_wordnet
from lyriscope.setmodel import DEFAULT_TAGS, edit_set, load_set


def search_terms(queries: Sequence[str], tags: Sequence[str]) -> list[str]:
    """Each query alone, then with each tag appended ("Ray of light", "Ray of light photography").

    This is how the paper searched; duplicates (case-insensitive) are dropped, order is kept.
    """
    terms: list[str] = []
    seen: set[str] = set()
    for query in queries:
        query = " ".join(query.split())
        if not query:
            continue
        for term in [query] + [f"{query} {' '.join(tag.split())}" for tag in tags if tag.strip()]:
            if term.lower() not in seen:
                seen.add(term.lower())
                terms.append(term)
    return terms


# English function words and lyric fillers: left out of key phrases. Contractions are whole tokens.
STOP_WORDS: frozenset[str] = frozenset(
    """
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
don't down during each few for from further had hadn't has hasn't have haven't having he he'd
he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into
is isn't it it's its itself let's me more most mustn't my myself no nor not of off on once only
or other ought our ours ourselves out over own same shan't she she'd she'll she's should
shouldn't so some such than that that's the their theirs them themselves then there there's
these they they'd they'll they're they've this those through to too under until up very was
wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while
who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your
yours yourself yourselves oh ooh ah yeah hey la na whoa uh gonna wanna gotta just like get got
ever every never always still now yet also even really let
""".split()
)
_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)*")
DEFAULT_MAX_QUERIES = 8


@dataclass(frozen=True)
class QueryOptions:
    max_queries: int = DEFAULT_MAX_QUERIES  # per line, the line itself included
    synonyms_per_word: int = 2  # WordNet synonyms tried per content word
    min_word_chars: int = 3  # shorter words are not content words


def content_words(text: str, *, min_chars: int = QueryOptions.min_word_chars) -> list[str]:
    """The words of `text` that carry meaning: stop words and very short words removed, order kept."""
    words = [w.replace("\u2019", "'") for w in _WORD.findall(text)]
    return [w for w in words if w.lower() not in STOP_WORDS and len(w) >= min_chars]


def key_phrase(text: str, *, min_chars: int = QueryOptions.min_word_chars) -> str:
    """The content words of `text` joined by spaces ("I'm the first ray of light" -> "first ray light")."""
    return " ".join(content_words(text, min_chars=min_chars))


def line_queries(text: str, *, wordnet=None, options: QueryOptions = QueryOptions()) -> list[str]:
    """Image queries for one lyric line: the line, its key phrase, then the key phrase with one
    content word replaced by a WordNet synonym ("first beam light"); no duplicates.

    wordnet: a `lyriscope.dataset_tools.wordnet.WordNet`, or None to skip synonyms.
    """
    line = " ".join(text.split()).strip(" ,.;:!?\"'")
    words = content_words(line, min_chars=options.min_word_chars)
    candidates = [line, " ".join(words)]
    if wordnet is not None:
        for i, word in enumerate(words):
            others = {w.lower() for w in words[:i] + words[i + 1 :]}
            usable = [
                s for s in wordnet.synonyms(word, limit=10) if not others & set(s.lower().split())
            ]  # "beam of light" beside "light"
            for synonym in usable[: options.synonyms_per_word]:
                candidates.append(" ".join(words[:i] + [synonym] + words[i + 1 :]))
    queries: list[str] = []
    for query in candidates:
        if query and query.lower() not in {q.lower() for q in queries}:
            queries.append(query)
    return queries[: options.max_queries]


@dataclass(frozen=True)
class FillResult:
    filled: tuple[int, ...]  # 0-based lines whose queries were written
    kept: tuple[int, ...]  # lines left alone because they had queries already
    synonyms: bool  # whether WordNet was found and used


def fill_queries(
    set_path: str | Path,
    *,
    lines: Sequence[int] | None = None,
    force: bool = False,
    wordnet_dir: str | Path | None = None,
    options: QueryOptions = QueryOptions(),
) -> FillResult:
    """Write queries (and the default tags where a line has none) into a set's set.toml.

    Lines that already list queries of their own are kept unless `force`; a line whose only
    query is its own text (what `lyriscope new` writes) is filled. The user's comments and layout
    survive (tomlkit); the file is replaced atomically and only if the result is a valid set.
    """
    song_set = load_set(set_path)  # validates, and names the problem if there is one
    folder = find_wordnet(wordnet_dir)
    wordnet = WordNet(folder) if folder is not None else None
    chosen = range(len(song_set.lines)) if lines is None else lines
    filled, kept = [], []

    def change(doc: tomlkit.TOMLDocument) -> None:
        for index in chosen:
            table = doc["line"][index]
            if not force and _has_own_queries(table):
                kept.append(index)
                continue
            queries = line_queries(str(table["text"]), wordnet=wordnet, options=options)
            table["queries"] = _string_array(queries)
            if "tags" not in table:
                table["tags"] = _string_array(DEFAULT_TAGS)
            filled.append(index)

    edit_set(song_set.path, change)  # never writes a broken set
    return FillResult(filled=tuple(filled), kept=tuple(kept), synonyms=wordnet is not None)


def _has_own_queries(table: Mapping[str, Any]) -> bool:
    """A line lists queries beyond its own text (which `new` writes, and the default is)."""
    queries = [str(q) for q in table.get("queries", ())]
    return bool(queries) and queries != [str(table["text"])]


def _string_array(items: Sequence[str]) -> tomlkit.items.Array:
    array = tomlkit.array()
    array.extend(items)
    return array.multiline(len(items) > 3)  # one query a line: easier to edit
