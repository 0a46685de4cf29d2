"""The LRC reader: stamp forms, tags, offset, enhanced words, gaps, encodings and bad input."""

from __future__ import annotations

import os
import time

import pytest

from lyriscope.errors import LyricsError
from lyriscope.lrc import MAX_LRC_BYTES, Word, format_time, parse_lrc, read_lrc


@pytest.mark.parametrize(
    ("stamp", "seconds"),
    [
        ("[01:23.45]", 83.45),  # hundredths
        ("[01:23.456]", 83.456),  # milliseconds
        ("[01:23:45]", 83.45),  # colon before the hundredths
        ("[01:23.4]", 83.4),  # tenths
        ("[01:23]", 83.0),  # whole seconds
        ("[1:05.00]", 65.0),  # one-digit minutes
        ("[120:00.00]", 7200.0),  # songs longer than an hour
    ],
)
def test_stamp_forms_give_the_time_in_seconds(stamp, seconds):
    lyrics = parse_lrc(f"{stamp}Hello")
    assert lyrics.lines[0].start == pytest.approx(seconds, abs=1e-9)
    assert lyrics.lines[0].text == "Hello"


def test_several_stamps_repeat_the_text_and_lines_come_sorted():
    lyrics = parse_lrc("[00:40.00][00:10.00]Chorus\n[00:20.00]Verse\n[00:05.00]Intro\n")
    assert [(ln.start, ln.text, ln.source_line) for ln in lyrics.lines] == [
        (5.0, "Intro", 3),
        (10.0, "Chorus", 1),
        (20.0, "Verse", 2),
        (40.0, "Chorus", 1),
    ]


def test_metadata_tags_are_kept_and_not_lines():
    text = (
        "[ar:Some Artist]\n[ti:Song [Live]]\n[al:Album]\n[length: 03:45]\n[by:me]\n"
        "[re:editor]\n[ve:1.0]\n[au:Writer]\n[00:01.00]One\n"
    )
    lyrics = parse_lrc(text)
    assert lyrics.meta["ar"] == "Some Artist"
    assert lyrics.meta["ti"] == "Song [Live]"
    assert lyrics.meta["length"] == "03:45"
    assert {"al", "by", "re", "ve", "au"} <= set(lyrics.meta)
    assert [ln.text for ln in lyrics.lines] == ["One"]


@pytest.mark.parametrize(("offset", "expected"), [("+500", 9.5), ("-250", 10.25), ("0", 10.0)])
def test_positive_offset_makes_lines_sooner(offset, expected):
    lyrics = parse_lrc(f"[offset:{offset}]\n[00:10.00]Line")
    assert lyrics.offset_ms == int(offset)
    assert lyrics.lines[0].start == pytest.approx(expected)


def test_offset_clamps_at_zero_and_applies_to_words():
    lyrics = parse_lrc("[offset:1000]\n[00:00.50]<00:00.50>a <00:02.00>b")
    line = lyrics.lines[0]
    assert line.start == 0.0
    assert line.words == (Word(0.0, "a"), Word(1.0, "b"))


def test_enhanced_word_times_are_words_not_text():
    lyrics = parse_lrc("[00:12.00]<00:12.00>I'm <00:12.50>the <00:13.00>fi<00:13.20>re<00:14.00>")
    line = lyrics.lines[0]
    assert line.text == "I'm the fire"
    assert [w.text for w in line.words] == ["I'm", "the", "fi", "re", ""]
    assert [w.start for w in line.words] == pytest.approx([12.0, 12.5, 13.0, 13.2, 14.0])


def test_words_before_the_first_word_time_start_with_the_line():
    lyrics = parse_lrc(
        "[offset:+100]\n[00:06.10]A tide of <00:06.90>quiet glass\n[00:20.00][00:09.00]x <00:09.50>y"
    )
    tide = lyrics.lines[0]
    assert tide.text == "A tide of quiet glass"
    assert [w.text for w in tide.words] == ["A tide of", "quiet glass"]
    assert [w.start for w in tide.words] == pytest.approx([6.0, 6.8])  # offset applied to both
    assert [w.start for w in lyrics.lines[2].words] == pytest.approx([19.9, 20.4])  # the repeat


def test_repeated_enhanced_line_moves_its_words_along():
    lyrics = parse_lrc("[00:10.00][00:30.00]<00:10.00>la <00:11.00>la")
    assert [w.start for w in lyrics.lines[1].words] == pytest.approx([30.0, 31.0])


def test_angle_brackets_that_are_not_times_stay_text():
    assert parse_lrc("[00:01.00]I <3 you <b>").lines[0].text == "I <3 you <b>"


def test_empty_text_is_an_instrumental_gap():
    lyrics = parse_lrc("[00:00.00]\n[00:04.00]Sing\n[00:10.00]   \n[00:12.00]Again\n")
    assert [ln.is_gap for ln in lyrics.lines] == [True, False, True, False]
    assert [ln.text for ln in lyrics.lyric_lines] == ["Sing", "Again"]
    assert [ln.start for ln in lyrics.gaps] == [0.0, 10.0]


def test_bom_crlf_and_lone_cr_are_read(tmp_path):
    path = tmp_path / "song.lrc"
    path.write_bytes(
        "\ufeff[ti:Été]\r\n[00:01.00]Première\r\n\r\n[00:02.00]Deux\r[00:03.00]Trois".encode(
            "utf-8"
        )
    )
    lyrics = read_lrc(path)
    assert lyrics.meta["ti"] == "Été"
    assert [(ln.text, ln.source_line) for ln in lyrics.lines] == [
        ("Première", 2),
        ("Deux", 4),
        ("Trois", 5),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[00:01.00]ok\nno stamp here", 2, "no time stamp"),
        ("[00:01.00]ok\n[00:61.00]bad seconds", 2, "does not parse"),
        ("[00:01.00]ok\n\n[0a:01.00]x", 3, "does not parse"),
        ("[-00:01.00]before the song", 1, "negative"),
        ("[99999999:00.00]far", 1, "does not parse"),
        ("[999999:00.00]far", 1, "minutes"),
        ("[00:01:5]x", 1, "hundredths"),
        ("[00:01.00\n", 1, "closing"),
        ("[Chorus]", 1, "neither a time stamp"),
        ("[ar:x] trailing text", 1, "neither a time stamp"),
        ("[offset:soon]\n[00:01.00]x", 1, "offset"),
        ("[offset:100]\n[offset:200]\n[00:01.00]x", 2, "second"),
        ("[00:01.00]a\n[00:01.00]b", 2, "same time as line 1"),
        ("[offset:+1000]\n[00:00.10]a\n[00:00.20]b", 3, "same time"),
        ("[00:05.00]<00:04.00>early", 1, "before the line's time"),
        ("[00:05.00]<00:06.00>a <00:05.50>b", 1, "must not go back"),
        ("[00:05.00]x <00:04.00>y", 1, "word time <00:04.00> is before the line's time"),
        ("[00:05.00]<00:06.00 unclosed", 1, "closing"),
        ("[00:01.00]ok\n\x00\x01binary", 2, "binary data"),
    ],
)
def test_malformed_lines_name_the_file_and_line(text, line, message):
    with pytest.raises(LyricsError, match=rf"^song\.lrc: line {line}: .*{message}"):
        parse_lrc(text, source="song.lrc")


def test_non_utf8_names_the_line_of_the_bad_byte(tmp_path):
    path = tmp_path / "latin1.lrc"
    path.write_bytes("[00:01.00]one\n[00:02.00]café\n".encode("latin-1"))
    with pytest.raises(LyricsError, match=r"latin1\.lrc: line 2: byte 0xe9 is not UTF-8"):
        read_lrc(path)


def test_binary_data_is_refused(tmp_path):
    path = tmp_path / "song.lrc"
    path.write_bytes(b"[00:01.00]x\n" + bytes(range(256)))
    with pytest.raises(LyricsError, match=r"song\.lrc: line 2: .*binary"):
        read_lrc(path)


def test_ten_megabytes_of_garbage_fail_fast(tmp_path):
    path = tmp_path / "big.lrc"
    path.write_bytes(os.urandom(10 * 1024 * 1024))
    began = time.perf_counter()
    with pytest.raises(LyricsError, match=r"big\.lrc: .*too big for an LRC file"):
        read_lrc(path)
    with pytest.raises(LyricsError, match="too long"):
        parse_lrc("x" * (10 * 1024 * 1024))
    assert time.perf_counter() - began < 2.0


def test_garbage_under_the_size_cap_fails_at_its_first_line_quickly():
    garbage = "[" * (MAX_LRC_BYTES // 2) + "\n" + "[00:01.00]x\n" * 1000
    began = time.perf_counter()
    with pytest.raises(LyricsError, match=r"line 1: "):
        parse_lrc(garbage)
    assert time.perf_counter() - began < 2.0


def test_a_large_valid_file_parses_in_linear_time():
    text = "".join(f"[{format_time(i / 100)}]line {i}\n" for i in range(100_000))
    began = time.perf_counter()
    lyrics = parse_lrc(text)
    assert len(lyrics.lyric_lines) == 100_000
    assert lyrics.lines[-1].start == pytest.approx(999.99)
    assert time.perf_counter() - began < 10.0


@pytest.mark.parametrize("name", ["missing.lrc", ""])
def test_missing_file_or_folder_is_a_lyrics_error(tmp_path, name):
    with pytest.raises(LyricsError, match=r"no such LRC file|is a folder"):
        read_lrc(tmp_path / name)


@pytest.mark.parametrize(
    ("seconds", "stamp"),
    [(0, "00:00.00"), (83.45, "01:23.45"), (3599.999, "60:00.00"), (61.005, "01:01.00")],
)
def test_format_time_reads_back(seconds, stamp):
    assert format_time(seconds) == stamp
    assert parse_lrc(f"[{stamp}]x").lines[0].start == pytest.approx(seconds, abs=0.0051)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_lyrics_are_named_as_such(tmp_path, codec):
    path = tmp_path / "song.lrc"
    path.write_bytes("[00:01.00]Último verso\n".encode(codec))
    with pytest.raises(LyricsError, match=r"song\.lrc: is saved as UTF-16; save it as UTF-8$"):
        read_lrc(path)
