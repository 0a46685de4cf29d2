"""Search terms, key phrases, the WordNet reader and `lyriscope queries` writing set.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.dataset_tools.queries import (
    QueryOptions,
    content_words,
    fill_queries,
    key_phrase,
    line_queries,
    search_terms,
)
from lyriscope.dataset_tools.wordnet import WordNet, find_wordnet
from lyriscope.setmodel import DEFAULT_TAGS, load_set

LICENCE_HEADER = "  1 This software and database is being provided to you, the LICENSEE\n"


def build_wordnet(
    folder: Path,
    synsets: dict[str, list[list[str]]],
    tagged: dict[tuple[str, str], int],
    exceptions: dict[str, str],
) -> Path:
    """A tiny WordNet database in the published file format, offsets computed byte by byte."""
    names = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
    folder.mkdir(parents=True, exist_ok=True)
    for pos, name in names.items():
        data, members = LICENCE_HEADER, {}
        for words in synsets.get(pos, []):
            offset = len(data.encode())
            data += (
                f"{offset:08d} 03 {pos} {len(words):02x} "
                + " ".join(f"{w} 0" for w in words)
                + " 000 | a gloss  \n"
            )
            for w in words:
                lemma = w.lower().removesuffix("(a)")  # index lemmas carry no marker
                members.setdefault(lemma, []).append(offset)
        index = LICENCE_HEADER + "".join(
            f"{lemma} {pos} {len(offs)} 0 {len(offs)} {tagged.get((lemma, pos), 0)} "
            + " ".join(f"{o:08d}" for o in offs)
            + "  \n"
            for lemma, offs in sorted(members.items())
        )
        (folder / f"data.{name}").write_text(data, encoding="utf-8")
        (folder / f"index.{name}").write_text(index, encoding="utf-8")
    (folder / "noun.exc").write_text("".join(f"{k} {v}\n" for k, v in exceptions.items()))
    return folder


@pytest.fixture
def tiny_wordnet(tmp_path) -> Path:
    return build_wordnet(
        tmp_path / "wn",
        synsets={
            "n": [
                ["beam", "beam_of_light", "ray", "shaft"],
                ["ray"],
                ["light", "visible_light"],
                ["mouse", "computer_mouse"],
            ],
            "a": [["light", "light-colored"], ["first(a)", "initial"]],
        },
        tagged={("light", "n"): 12, ("light", "a"): 3, ("ray", "n"): 2, ("first", "a"): 5},
        exceptions={"mice": "mouse"},
    )


def test_search_terms_are_each_query_then_query_plus_tag():
    assert search_terms(["Ray of light", "Beam"], ["photography", "art"]) == [
        "Ray of light",
        "Ray of light photography",
        "Ray of light art",
        "Beam",
        "Beam photography",
        "Beam art",
    ]
    assert search_terms(["sun", "Sun ", "  "], []) == ["sun"]  # no duplicates, no blanks


def test_key_phrase_drops_stop_words_and_keeps_order():
    assert key_phrase("I'm the first ray of light") == "first ray light"
    assert content_words("Oh, we’re falling into the night!") == ["falling", "night"]


def test_line_queries_without_wordnet_are_the_line_and_its_key_phrase():
    assert line_queries("I'm the first ray of light.") == [
        "I'm the first ray of light",
        "first ray light",
    ]


def test_wordnet_reader_finds_lemmas_inflections_and_synonyms(tiny_wordnet):
    wn = WordNet(tiny_wordnet)
    assert wn.entry("beam of light", "n") is not None
    assert wn.base_forms("rays", "n") == ["ray"]
    assert wn.base_forms("mice", "n") == ["mouse"]
    assert wn.main_pos("light") == ("light", "n")  # more tagged senses as a noun
    assert wn.synonyms("ray", limit=5) == ["beam", "beam of light", "shaft"]
    assert wn.synonyms("rays", limit=1) == ["beam"]
    assert wn.synonyms("first") == ["initial"]  # the "(a)" marker is not part of the word
    assert wn.synonyms("nonexistentword") == []


def test_line_queries_substitute_synonyms(tiny_wordnet):
    queries = line_queries(
        "I'm the first ray of light",
        wordnet=WordNet(tiny_wordnet),
        options=QueryOptions(max_queries=5, synonyms_per_word=1),
    )
    assert queries == [
        "I'm the first ray of light",
        "first ray light",
        "initial ray light",
        "first beam light",
        "first ray visible light",
    ]
    more = line_queries(
        "first ray of light",
        wordnet=WordNet(tiny_wordnet),
        options=QueryOptions(max_queries=20, synonyms_per_word=5),
    )
    assert "first shaft light" in more
    assert "first beam of light light" not in more  # a synonym repeating another word is skipped


@pytest.mark.skipif(find_wordnet() is None, reason="WordNet (wordnet-base) not installed")
def test_real_wordnet_knows_a_beam_is_a_ray():
    wn = WordNet(find_wordnet())
    assert "beam" in wn.synonyms("ray")
    assert wn.base_forms("running", "v") == ["run"]


def test_find_wordnet_is_none_for_a_folder_without_the_database(tmp_path):
    assert find_wordnet(tmp_path) is None


SET_LINES = [
    {"text": "I'm the first ray of light"},
    {"text": "Into the night", "queries": ["My own query"], "tags": ["art"]},
]


def test_fill_queries_keeps_comments_and_existing_queries(tmp_path, tiny_wordnet):
    root = write_set(tmp_path / "demo", lines=SET_LINES, comment="# my song")
    toml = root / "set.toml"
    toml.write_text(toml.read_text().replace("[song]", "# keep me\n[song]  # and me"))
    result = fill_queries(root, wordnet_dir=tiny_wordnet)
    assert result.filled == (0,) and result.kept == (1,) and result.synonyms
    text = toml.read_text()
    assert "# my song" in text and "# keep me" in text and "# and me" in text
    song = load_set(root)
    assert song.lines[0].queries[:2] == ("I'm the first ray of light", "first ray light")
    assert "first beam light" in song.lines[0].queries
    assert song.lines[0].tags == DEFAULT_TAGS
    assert song.lines[1].queries == ("My own query",)
    fill_queries(root, lines=[1], force=True, wordnet_dir=tiny_wordnet)
    assert load_set(root).lines[1].queries == ("Into the night", "night")
    assert load_set(root).lines[1].tags == ("art",)


def test_fill_queries_without_wordnet_still_fills(tmp_path):
    root = write_set(tmp_path / "demo", lines=SET_LINES, comment="# my song")
    result = fill_queries(root, wordnet_dir=tmp_path / "none")
    assert not result.synonyms
    assert load_set(root).lines[0].queries == ("I'm the first ray of light", "first ray light")


def test_cli_queries_prints_the_queries_and_refuses_bad_lines(tmp_path, tiny_wordnet, capsys):
    root = write_set(tmp_path / "demo", lines=SET_LINES, comment="# my song")
    assert main(["queries", str(root), "--wordnet", str(tiny_wordnet)]) == 0
    out = capsys.readouterr().out
    assert "line 1: I'm the first ray of light | first ray light" in out
    assert "kept the queries of line(s) 2" in out
    assert main(["queries", str(root), "--line", "3"]) == 2
    assert "--line 3: the set has lines 1..2" in capsys.readouterr().err


def test_queries_after_new_fills_them_and_a_second_run_says_how_to_redo(
    tmp_path, tiny_wordnet, capsys
):
    lines = [{"text": "I'm the first ray of light", "queries": ["I'm the first ray of light"]}]
    root = write_set(tmp_path / "demo", lines=lines)  # what `lyriscope new` writes
    assert main(["queries", str(root), "--wordnet", str(tiny_wordnet)]) == 0
    assert "line 1: I'm the first ray of light | first ray light" in capsys.readouterr().out
    assert main(["queries", str(root), "--wordnet", str(tiny_wordnet)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"line(s) 1 already have queries of their own, so nothing changed; "
        f"`lyriscope queries {root} --force` makes them again"
    ]
