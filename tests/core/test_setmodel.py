"""set.toml: defaults, per-line overrides, and errors that name the file, the table and the key."""

from __future__ import annotations

import pytest
from setfiles import write_set

from lyriscope.cli import main
from lyriscope.errors import SetError
from lyriscope.params import OUTPUT_PARAMS, POST_PARAMS, WALK_PARAMS
from lyriscope.setmodel import (
    Bands,
    Output,
    WalkParams,
    default_seeds,
    edit_set,
    load_set,
    set_file,
)

SONG = '[song]\ntitle = "T"\naudio = "song.wav"\nlyrics = "song.lrc"\n'
TWO_LINES = '[[line]]\ntext = "A"\n\n[[line]]\ntext = "B"\n'


def test_minimal_set_takes_the_defaults(tmp_path):
    s = load_set(write_set(tmp_path / "demo", toml=SONG + TWO_LINES))
    assert s.name == "demo"
    assert s.path == tmp_path / "demo" / "set.toml"
    assert s.song.audio == (tmp_path / "demo" / "song.wav").resolve()
    assert s.output == Output()
    assert s.walk == WalkParams()
    assert [line.text for line in s.lines] == ["A", "B"]
    assert s.lines[0].queries == ("A",)
    assert s.lines[0].tags == ("photography", "art", "painting")
    assert s.lines[0].seeds == default_seeds(0, 9)
    assert s.lines[0].model is None and s.lines[0].at is None
    assert not set(s.lines[0].seeds) & set(s.lines[1].seeds)  # lines get their own images


def test_line_overrides_walk_defaults_and_keeps_the_rest(tmp_path):
    text = SONG + (
        "[output]\ngap = 2\nfps = 30\n"
        '[walk]\npulse = 0.9\nbands = { low = "fine" }\n'
        '[[line]]\ntext = "A"\nmotion = 0.1\nseeds = [5, 6, 7]\nmodel = "models/a.safetensors"\nat = 1.5\n'
        '[[line]]\ntext = "B"\nbands = { high = "none" }\n'
    )
    s = load_set(write_set(tmp_path / "s", toml=text))
    a, b = s.lines
    assert s.output.gap == 1 and s.output.fps == 30.0  # gap is 1-based in the file
    assert a.walk.pulse == 0.9 and a.walk.motion == 0.1 and a.walk.seeds == 3
    assert a.seeds == (5, 6, 7) and a.at == 1.5
    assert a.model == (tmp_path / "s" / "models" / "a.safetensors").resolve()
    assert b.walk.bands == Bands(low="fine", mid="middle", high="none")
    assert a.walk.noise == "const"  # the published default


def test_set_file_accepts_the_folder_or_the_file(tmp_path):
    assert set_file(tmp_path) == tmp_path / "set.toml"
    assert set_file(tmp_path / "other.toml") == tmp_path / "other.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n" + SONG + TWO_LINES, r"colour: unknown key"),
        (
            SONG + '[[line]]\ntext = "A"\nnoise = "grain"\n',
            r"\[\[line\]\] 1 \('A'\) noise: expected one of 'const', 'random', 'none', got 'grain'",
        ),
        (TWO_LINES, r"\[song\]: missing table"),
        (
            '[song]\naudio = "song.wav"\nlyrics = "song.lrc"\n' + TWO_LINES,
            r"\[song\] title: missing",
        ),
        (
            SONG.replace("song.wav", "gone.wav") + TWO_LINES,
            r"\[song\] audio: file .*gone\.wav does not exist",
        ),
        (
            SONG.replace('title = "T"', 'title = ""') + TWO_LINES,
            r"\[song\] title: must not be empty",
        ),
        (
            SONG + "[output]\nfps = 0\n" + TWO_LINES,
            r"\[output\] fps: expected a value in 1\.\.1000, got 0",
        ),
        (SONG + "[output]\nfps = inf\n" + TWO_LINES, r"\[output\] fps: expected a number, got inf"),
        (SONG + '[output]\nsize = "big"\n' + TWO_LINES, r"\[output\] size: expected an integer"),
        (
            SONG + "[output]\ngap = 3\n" + TWO_LINES,
            r"\[output\] gap: expected a line number 1\.\.2, got 3",
        ),
        (
            SONG + "[walk]\ntruncation = true\n" + TWO_LINES,
            r"\[walk\] truncation: expected a number",
        ),
        (SONG + "[walk]\nseeds = [1, 2]\n" + TWO_LINES, r"\[walk\] seeds: expected an integer"),
        (SONG + "[walk]\nspeed = 1\n" + TWO_LINES, r"\[walk\] speed: unknown key"),
        (
            SONG + '[walk]\nbands = { low = "deep" }\n' + TWO_LINES,
            r"\[walk\] bands\.low: expected one of",
        ),
        (
            SONG + '[walk]\nbands = { bass = "fine" }\n' + TWO_LINES,
            r"\[walk\] bands\.bass: unknown key",
        ),
        (
            SONG + "[post]\nvignette = 2\n" + TWO_LINES,
            r"\[post\] vignette: expected a value in 0\.\.1",
        ),
        (
            SONG + '[[line]]\ntext = "A"\n[[line]]\nqueries = ["x"]\n',
            r"\[\[line\]\] 2 text: missing",
        ),
        (
            SONG + '[[line]]\ntext = "A"\nmodle = "m"\n',
            r"\[\[line\]\] 1 \('A'\) modle: unknown key",
        ),
        (
            SONG + '[[line]]\ntext = "A"\nseeds = [1]\n',
            r"\[\[line\]\] 1 \('A'\) seeds: expected a list of at least 2",
        ),
        (
            SONG + '[[line]]\ntext = "A"\nseeds = [1, -2]\n',
            r"\[\[line\]\] 1 \('A'\) seeds: .*0\.\.4294967295",
        ),
        (
            SONG + '[[line]]\ntext = "A"\nat = -1\n',
            r"\[\[line\]\] 1 \('A'\) at: expected a value of at least 0",
        ),
        (
            SONG + '[[line]]\ntext = "A"\ntags = "art"\n',
            r"\[\[line\]\] 1 \('A'\) tags: expected a list of strings",
        ),
        ('line = "A"\n' + SONG, r"'line' must be an array of tables"),
        (SONG, r"no \[\[line\]\] entries"),
        (
            SONG + TWO_LINES + '[midi]\ncc = { 200 = "pulse" }\n',
            r"\[midi\] cc\.200: expected a MIDI number",
        ),
        (
            SONG + TWO_LINES + '[midi]\ncc = { "²" = "pulse" }\n',
            r"\[midi\] cc\.²: expected a MIDI number",
        ),
        (
            SONG + TWO_LINES + '[midi]\ncc = { 1 = "speed" }\n',
            r"\[midi\] cc\.1: expected one of pulse",
        ),
        (
            SONG + TWO_LINES + '[midi]\nnotes = { 36 = "line:0" }\n',
            r"\[midi\] notes\.36: expected line:next",
        ),
        (
            SONG + TWO_LINES + '[midi]\nnotes = { 36 = "line:3" }\n',
            r"\[midi\] notes\.36: 'line:3' names a line",
        ),
        (
            SONG + TWO_LINES + "[midi]\nchannel = 17\n",
            r"\[midi\] channel: expected a value in 1\.\.16",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, message):
    root = write_set(tmp_path / "bad", toml=text)
    with pytest.raises(SetError, match=rf"bad/set\.toml: .*{message}"):
        load_set(root)


def test_missing_set_file_says_how_to_make_one(tmp_path):
    with pytest.raises(
        SetError, match=r"nowhere/set\.toml: no such set file; create one with `lyriscope new`"
    ):
        load_set(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'[song\ntitle = "x"\n', r"not valid TOML: .*line 1"),
        (b'[song]\ntitle = "\xe9"\n', r"not (valid TOML|UTF-8)"),
    ],
)
def test_unreadable_toml_names_the_file(tmp_path, raw, message):
    (tmp_path / "set.toml").write_bytes(raw)
    with pytest.raises(SetError, match=rf"set\.toml: {message}"):
        load_set(tmp_path)


def test_need_models_names_the_line_and_how_to_train_it(tmp_path):
    root = write_set(
        tmp_path / "s",
        toml=SONG
        + '[[line]]\ntext = "A"\nmodel = "models/line-01.safetensors"\n[[line]]\ntext = "B"\n',
    )
    load_set(root)  # without need_models a set may lack models
    with pytest.raises(
        SetError,
        match=r"\[\[line\]\] 1 \('A'\) model: file .*line-01\.safetensors does "
        r"not exist; train it with `lyriscope train",
    ):
        load_set(root, need_models=True)
    (root / "models").mkdir()
    (root / "models" / "line-01.safetensors").write_bytes(b"x")
    with pytest.raises(
        SetError,
        match=r"\[\[line\]\] 2 \('B'\) has no model; add model = "
        r"\"models/line-02\.safetensors\"",
    ):
        load_set(root, need_models=True)


def test_edit_set_keeps_comments_and_writes_only_a_valid_set(tmp_path):
    text = SONG + "[walk]\npulse = 0.4  # the kick pushes\n" + TWO_LINES
    root = write_set(tmp_path / "s", toml=text)
    edited = edit_set(root, lambda doc: doc["walk"].update(pulse=0.9))
    assert edited.walk.pulse == 0.9 == load_set(root).walk.pulse
    assert "pulse = 0.9  # the kick pushes" in (root / "set.toml").read_text(encoding="utf-8")

    def break_it(doc):
        doc["walk"]["pulse"] = -1.0

    with pytest.raises(SetError, match=r"\[walk\] pulse: expected a value of at least 0"):
        edit_set(root, break_it)
    assert load_set(root).walk.pulse == 0.9  # the file is as it was


@pytest.mark.parametrize(
    ("table", "key", "value", "expected"),
    [
        ("walk", "loop_seconds", 0, "a value above 0"),
        ("walk", "truncation", 3, "a value in -2..2"),
        ("walk", "seeds", 1, "a value in 2..1000"),
        ("walk", "seeds", 100000000, "a value in 2..1000"),
        ("output", "size", 10000000, "a value in 16..8192"),
        ("post", "trail", 1.0, "a value in 0..0.99"),
        ("output", "fps", 0, "a value in 1..1000"),
        ("output", "crf", 52, "a value in 0..51"),
    ],
)
def test_ranges_come_from_one_table(tmp_path, table, key, value, expected):
    params = {"walk": WALK_PARAMS, "post": POST_PARAMS, "output": OUTPUT_PARAMS}[table]
    assert params[key].problem(value) == expected
    root = write_set(tmp_path / "s", toml=SONG + f"[{table}]\n{key} = {value}\n" + TWO_LINES)
    with pytest.raises(SetError, match=rf"\[{table}\] {key}: expected {expected}"):
        load_set(root)


def test_text_style_from_post_with_a_line_overriding_it(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "big.ttf").write_bytes(b"\0\1\0\0")
    text = SONG + (
        '[post]\ntext = true\ntext_size = 0.08\ntext_color = "#FFEEDD"\ntext_position = "top"\n'
        '[[line]]\ntext = "A"\ntext_karaoke = "words"\ntext_font = "big.ttf"\n'
        '[[line]]\ntext = "B"\n'
    )
    s = load_set(write_set(root, toml=text))
    a, b = s.lines
    assert s.post.style.size == 0.08 and s.post.style.color == "#ffeedd"
    assert a.style.karaoke == "words" and a.style.position == "top" and a.style.size == 0.08
    assert a.style.font == (root / "big.ttf").resolve()
    assert b.style == s.post.style and b.style.font is None  # the bundled font


@pytest.mark.parametrize(
    ("where", "key_value", "message"),
    [
        ("[post]", 'text_color = "white"', r"\[post\] text_color: expected a colour written"),
        ("[post]", 'text_position = "left"', r"text_position: expected one of 'bottom'"),
        ("[post]", "text_size = 0", r"text_size: expected a value in 0.005..0.5"),
        ("[post]", 'text_karaoke = "bounce"', r"text_karaoke: expected one of 'fill'"),
        ("[post]", 'text_font = "none.ttf"', r"\[post\] text_font: file .*none.ttf does not exist"),
        ("[post]", "text_fade = 1", r"\[post\] text_fade: unknown key"),
        ("line", "text_outline = 2", r"\[\[line\]\] 1 \('A'\) text_outline: expected a value in"),
    ],
)
def test_text_style_errors_name_the_key(tmp_path, where, key_value, message):
    if where == "line":
        text = SONG + f'[[line]]\ntext = "A"\n{key_value}\n'
    else:
        text = SONG + f"{where}\n{key_value}\n" + TWO_LINES
    with pytest.raises(SetError, match=message):
        load_set(write_set(tmp_path / "s", toml=text))


@pytest.mark.parametrize(
    ("line_key", "song_audio", "where"),
    [
        ('model = "../victim/notes.txt"', "song.wav", r"\[\[line\]\] 1 \('A'\) model"),
        ('model = "models/../../victim/notes.txt"', "song.wav", r"model"),
        ('sources = ["folder:/home"]', "song.wav", r"sources"),
        ('text_font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"', "song.wav", "text_font"),
        ("", "/etc/hostname", r"\[song\] audio"),
    ],
)
def test_paths_in_set_toml_stay_inside_the_set(tmp_path, line_key, song_audio, where):
    victim = tmp_path / "victim" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text("mine")
    toml = SONG.replace('audio = "song.wav"', f'audio = "{song_audio}"')
    toml += f'[[line]]\ntext = "A"\n{line_key}\n'
    root = write_set(tmp_path / "s", toml=toml)
    with pytest.raises(SetError, match=rf"{where}: '.*' is outside the set folder"):
        load_set(root)


def test_a_symlink_the_user_made_inside_the_set_is_followed(tmp_path):
    elsewhere = tmp_path / "big-disk" / "models"
    elsewhere.mkdir(parents=True)
    root = write_set(
        tmp_path / "s", toml=SONG + '[[line]]\ntext = "A"\nmodel = "models/a.safetensors"\n'
    )
    (root / "models").symlink_to(elsewhere)
    assert load_set(root).lines[0].model == elsewhere / "a.safetensors"


@pytest.mark.parametrize("command", [["check"], ["train", "--line", "1", "--kimg", "0.01"]])
def test_a_set_naming_a_file_outside_it_is_refused_by_every_command(tmp_path, capsys, command):
    victim = tmp_path / "victim" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text("mine")
    toml = SONG + '[[line]]\ntext = "A"\nmodel = "../victim/notes.txt"\n'
    root = write_set(tmp_path / "s", toml=toml)
    assert main([command[0], str(root), *command[1:]]) == 2
    assert "is outside the set folder" in capsys.readouterr().err
    assert victim.read_text() == "mine"


def test_an_odd_frame_size_is_refused_with_why(tmp_path):
    root = write_set(tmp_path / "s", toml=SONG + "[output]\nsize = 1001\n" + TWO_LINES)
    with pytest.raises(SetError, match=r"\[output\] size: expected an even number of pixels"):
        load_set(root)


def test_deeply_nested_toml_is_one_sentence(tmp_path):
    toml = SONG + "[walk]\nbands = " + "[" * 5000 + "]" * 5000 + "\n" + TWO_LINES
    with pytest.raises(SetError, match=r"nested too deeply|not valid TOML"):
        load_set(write_set(tmp_path / "s", toml=toml))


def test_a_long_lyric_is_cut_in_messages(tmp_path):
    long = "la " * 400
    toml = SONG + f'[[line]]\ntext = "{long}"\nseeds = [1]\n'
    with pytest.raises(SetError) as caught:
        load_set(write_set(tmp_path / "s", toml=toml))
    assert len(str(caught.value)) < 400 and "la la" in str(caught.value)


def test_lines_without_a_model_of_their_own_use_the_songs_conditional_model(tmp_path):
    song = SONG.replace(
        'lyrics = "song.lrc"\n', 'lyrics = "song.lrc"\nmodel = "models/song.safetensors"\n'
    )
    toml = song + (
        '[[line]]\ntext = "A"\nmodel = "models/a.safetensors"\n'
        '[[line]]\ntext = "B"\n'
        '[[line]]\ntext = "C"\nclass = 0\n'
    )
    s = load_set(write_set(tmp_path / "s", toml=toml))
    root = tmp_path / "s"
    assert s.song.model == root / "models" / "song.safetensors"
    assert [(line.model.name, line.label) for line in s.lines] == [
        ("a.safetensors", None),  # a model of its own
        ("song.safetensors", 1),  # the song's, class = its position
        ("song.safetensors", 0),  # the song's, the class set.toml gives
    ]


@pytest.mark.parametrize(
    ("song_model", "line", "message"),
    [
        (True, 'model = "models/a.safetensors"\nclass = 1', "only a line drawn by the song's"),
        (False, "class = 1", r"the set has no conditional model; add \[song\] model"),
        (True, "class = -1", "class: expected a value of at least 0"),
    ],
)
def test_class_keys_that_cannot_apply_are_refused(tmp_path, song_model, line, message):
    song = SONG
    if song_model:
        song = SONG.replace(
            'lyrics = "song.lrc"\n', 'lyrics = "song.lrc"\nmodel = "m.safetensors"\n'
        )
    root = write_set(tmp_path / "s", toml=song + f'[[line]]\ntext = "A"\n{line}\n')
    with pytest.raises(SetError, match=message):
        load_set(root)
