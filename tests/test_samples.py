"""Sample melodies: the bundled tunes are well formed and sound like themselves,
and the notation parser catches mistakes with a useful message."""

import json
from fractions import Fraction
from pathlib import Path

import pytest

from capsule_lib import CapsuleError
from capsule_lib.midi import midi_bytes, read_midi
from capsule_lib.samples import (
    TECHNIQUES,
    from_notation,
    list_samples,
    load_sample,
    parse_notation,
    pitch_from_name,
)

MELODIES = Path(__file__).resolve().parent.parent / "data" / "melodies"
FILES = sorted(MELODIES.glob("*.json"))
NAMES = [p.stem for p in FILES]
CLASSICAL = {"ode_to_joy", "largo_new_world", "fur_elise", "minuet_in_g", "greensleeves"}


def raw(name):
    return json.loads((MELODIES / f"{name}.json").read_text(encoding="utf-8"))


def tokens_of(spec):
    notes = spec["notes"]
    return (notes if isinstance(notes, str) else " ".join(notes)).split()


def beats(score, note):
    return Fraction(note.start, score.resolution)


def pitches(score, n=None):
    return [note.pitch for note in score.notes[:n]]


# -- the bundled collection -----------------------------------------------------
def test_collection_has_the_required_tunes():
    assert len(FILES) >= 10
    for required in (
        "ode_to_joy",
        "twinkle_twinkle",
        "mary_had_a_little_lamb",
        "jingle_bells",
        "we_wish_you_a_merry_christmas",
        "deck_the_halls",
        "largo_new_world",
        "fur_elise",
    ):
        assert required in NAMES


def test_list_samples_is_sorted_and_complete():
    listed = list_samples()
    assert [s["name"] for s in listed] == sorted(NAMES)
    for entry in listed:
        assert {"name", "title", "composer", "recommended_for", "bars", "tempo", "key"} <= set(entry)
        assert entry["bars"] >= 8
        assert set(entry["recommended_for"]) <= set(TECHNIQUES) and entry["recommended_for"]
    assert any("transformer" in s["recommended_for"] for s in listed)


@pytest.mark.parametrize("name", NAMES)
def test_file_fields(name):
    spec = raw(name)
    assert spec["name"] == name
    for field in ("title", "composer", "source", "key"):
        assert isinstance(spec[field], str) and spec[field].strip()
    assert "public domain" in spec["source"]
    assert 40 <= spec["tempo"] <= 160
    assert "|" in tokens_of(spec), "every sample uses bar lines, so its bars are checked"
    if name in CLASSICAL:
        assert "transformer" in spec["recommended_for"]
    else:
        assert {"arcnn", "gan"} <= set(spec["recommended_for"])


@pytest.mark.parametrize("name", NAMES)
def test_every_bar_sums_to_the_time_signature(name):
    # Independent of the parser: add up the durations between bar lines.
    spec = raw(name)
    num, den = spec["time_signature"]
    bar = Fraction(4 * num, den)
    pickup = Fraction(str(spec.get("pickup", 0)))
    bars, current = [], Fraction(0)
    for token in tokens_of(spec):
        if token == "|":
            bars.append(current)
            current = Fraction(0)
        else:
            current += Fraction(token.split(":")[1].rstrip("~"))
    assert current == 0, "the melody ends with a bar line"
    if pickup:
        assert bars[0] == pickup
        bars = bars[1:]
    assert all(b == bar for b in bars), [i for i, b in enumerate(bars) if b != bar]
    assert len(bars) >= 8
    if name in CLASSICAL - {"largo_new_world"}:
        assert len(bars) >= 16


@pytest.mark.parametrize("name", NAMES)
def test_sample_loads_as_a_monophonic_singable_melody(name):
    score = load_sample(name)
    spec = raw(name)
    assert len(score.tracks) == 1
    track = score.tracks[0]
    assert track.name == "melody" and track.program == 0 and not track.is_drum
    assert score.title == spec["title"]
    assert score.tempo == spec["tempo"]
    assert score.time_signature == tuple(spec["time_signature"])
    notes = score.notes
    assert len(notes) >= 20
    assert all(55 <= n.pitch <= 84 for n in notes), "G3..C6"
    assert all(a.end <= b.start for a, b in zip(notes, notes[1:])), "one note at a time"
    # the pickup ends on a bar line: the first full bar starts on the grid
    pickup = Fraction(str(spec.get("pickup", 0)))
    first_full_bar = score.steps_per_bar if pickup else 0
    assert any(n.start == first_full_bar for n in notes)
    assert beats(score, notes[0]) == (Fraction(score.steps_per_bar, score.resolution) - pickup if pickup else 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("resolution", [24, 4])
def test_midi_round_trip(name, resolution):
    score = load_sample(name, resolution=resolution)
    back = read_midi(midi_bytes(score), track="all", resolution=resolution)
    assert back.tracks[0].notes == score.tracks[0].notes
    assert back.tracks[0].name == "melody"
    assert back.title == score.title
    assert back.time_signature == score.time_signature
    assert back.tempo == pytest.approx(score.tempo)


# -- the tunes are the tunes ----------------------------------------------------
def test_ode_to_joy():
    s = load_sample("ode_to_joy")
    # E E F G G F E D, in Beethoven's key of D major: F# F# G A A G F# E
    assert pitches(s, 8) == [66, 66, 67, 69, 69, 67, 66, 64]
    assert [b - a for a, b in zip(pitches(s, 8), pitches(s, 8)[1:])] == [0, 1, 2, 0, -2, -1, -2]
    assert [beats(s, n) for n in s.notes[:4]] == [0, 1, 2, 3]
    # bar 4: dotted quarter, eighth, half
    bar4 = [n for n in s.notes if 12 <= beats(s, n) < 16]
    assert [Fraction(n.duration, s.resolution) for n in bar4] == [Fraction(3, 2), Fraction(1, 2), 2]
    # the syncopated F# tied over the bar line into bar 13 lasts two beats
    tied = [n for n in s.notes if beats(s, n) == 47]
    assert len(tied) == 1 and tied[0].pitch == 66 and tied[0].duration == 2 * s.resolution
    assert s.n_bars == 16 and s.notes[-1].pitch == 62  # ends on the tonic D4


def test_twinkle_twinkle():
    s = load_sample("twinkle_twinkle")
    assert pitches(s, 7) == [60, 60, 67, 67, 69, 69, 67]
    assert s.notes[6].duration == 2 * s.resolution  # "star" is a half note
    assert s.notes[-1].pitch == 60


def test_mary_had_a_little_lamb():
    s = load_sample("mary_had_a_little_lamb")
    assert pitches(s, 7) == [64, 62, 60, 62, 64, 64, 64]
    assert [beats(s, n) for n in s.notes[:3]] == [0, 1, 2]
    assert s.notes[-1].pitch == 60 and s.notes[-1].duration == 4 * s.resolution


def test_jingle_bells():
    s = load_sample("jingle_bells")
    # B B B-, B B B-, B D G A B
    assert pitches(s, 11) == [71, 71, 71, 71, 71, 71, 71, 74, 67, 69, 71]
    assert s.notes[2].duration == 2 * s.resolution


def test_we_wish_you_a_merry_christmas_has_a_pickup():
    s = load_sample("we_wish_you_a_merry_christmas")
    assert s.time_signature == (3, 4)
    first, second = s.notes[:2]
    assert (first.pitch, beats(s, first)) == (62, 2)  # "We" on the last beat of the pickup bar
    assert (second.pitch, second.start) == (67, s.steps_per_bar)  # "wish" on the downbeat
    assert pitches(s, 6) == [62, 67, 67, 69, 67, 66]


def test_deck_the_halls():
    s = load_sample("deck_the_halls")
    assert pitches(s, 8) == [67, 65, 64, 62, 60, 62, 64, 60]
    assert Fraction(s.notes[0].duration, s.resolution) == Fraction(3, 2)


def test_largo_theme():
    s = load_sample("largo_new_world")
    assert pitches(s, 6) == [65, 68, 68, 65, 63, 61]  # F Ab Ab F Eb Db
    assert [Fraction(n.duration, s.resolution) for n in s.notes[:3]] == [Fraction(3, 2), Fraction(1, 2), 2]


def test_fur_elise():
    s = load_sample("Für Elise")
    assert s.time_signature == (3, 8)
    assert pitches(s, 9) == [76, 75, 76, 75, 76, 71, 74, 72, 69]
    assert beats(s, s.notes[0]) == 1  # a sixteenth-note pickup pair in a 1.5-beat bar
    assert all(n.duration == s.resolution // 4 for n in s.notes[:8])


def test_minuet_in_g():
    s = load_sample("minuet_in_g")
    assert pitches(s, 8) == [74, 67, 69, 71, 72, 74, 67, 67]
    assert s.notes[-1].pitch == 67 and s.notes[-1].duration == 3 * s.resolution


def test_greensleeves():
    s = load_sample("greensleeves")
    assert pitches(s, 8) == [69, 72, 74, 76, 77, 76, 74, 71]


# -- looking samples up -----------------------------------------------------------
def test_load_by_title_case_insensitively():
    assert load_sample("ODE TO JOY").notes == load_sample("ode_to_joy").notes
    assert load_sample("twinkle, twinkle, little star").title == "Twinkle, Twinkle, Little Star"
    assert load_sample("mary-had-a-little-lamb").title == "Mary Had a Little Lamb"


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(CapsuleError) as err:
        load_sample("stairway_to_heaven")
    message = str(err.value)
    assert "stairway_to_heaven" in message and "ode_to_joy" in message and "fur_elise" in message


def test_resolution_changes_the_grid_not_the_music():
    fine, coarse = load_sample("jingle_bells"), load_sample("jingle_bells", resolution=4)
    assert coarse.resolution == 4 and coarse.steps_per_bar == 16
    assert [(n.pitch, Fraction(n.start, 4)) for n in coarse.notes] == [
        (n.pitch, Fraction(n.start, 24)) for n in fine.notes
    ]


def _write(folder, stem, **changes):
    spec = {
        "name": stem,
        "title": stem.title(),
        "composer": "test",
        "source": "test; public domain",
        "tempo": 100,
        "time_signature": [4, 4],
        "key": "C major",
        "recommended_for": ["gan"],
        "notes": "C4:1 D4:1 E4:1 F4:1 | G4:4 |",
    }
    spec.update(changes)
    (folder / "melodies").mkdir(exist_ok=True)
    (folder / "melodies" / f"{stem}.json").write_text(json.dumps(spec), encoding="utf-8")


def test_data_folder_from_environment(tmp_path, monkeypatch):
    _write(tmp_path, "tiny")
    monkeypatch.setenv("CAPSULE_DATA", str(tmp_path))
    assert [s["name"] for s in list_samples()] == ["tiny"]
    assert pitches(load_sample("tiny")) == [60, 62, 64, 65, 67]


def test_broken_file_names_the_file_and_token(tmp_path, monkeypatch):
    _write(tmp_path, "broken", notes="C4:1 D4:1 H4:1 F4:1 |")
    monkeypatch.setenv("CAPSULE_DATA", str(tmp_path))
    with pytest.raises(CapsuleError, match=r"broken\.json.*'H4:1'"):
        load_sample("broken")


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"tempo": 300}, "tempo 300"),
        ({"recommended_for": ["cnn"]}, "unknown: cnn"),
        ({"recommended_for": []}, "recommended_for"),
        ({"time_signature": [4]}, "time_signature"),
        ({"notes": 5}, "'notes'"),
        ({"name": "other"}, "must equal the file name"),
    ],
)
def test_bad_fields_are_reported(tmp_path, monkeypatch, changes, pattern):
    _write(tmp_path, "bad", **changes)
    monkeypatch.setenv("CAPSULE_DATA", str(tmp_path))
    with pytest.raises(CapsuleError, match=pattern):
        list_samples()


def test_missing_field_and_bad_json(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSULE_DATA", str(tmp_path))
    (tmp_path / "melodies").mkdir()
    (tmp_path / "melodies" / "a.json").write_text('{"name": "a"}', encoding="utf-8")
    with pytest.raises(CapsuleError, match=r"a\.json: missing field 'title'"):
        list_samples()
    (tmp_path / "melodies" / "a.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CapsuleError, match=r"a\.json: not valid JSON"):
        load_sample("a")


def test_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSULE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(CapsuleError, match="melodies folder"):
        list_samples()


# -- the notation -----------------------------------------------------------------
@pytest.mark.parametrize(
    "name, midi",
    [("C4", 60), ("A4", 69), ("C#4", 61), ("Db4", 61), ("Cb4", 59), ("B#3", 60), ("A0", 21), ("G9", 127), ("C-1", 0)],
)
def test_pitch_names(name, midi):
    assert pitch_from_name(name) == midi


@pytest.mark.parametrize("name", ["H4", "C", "C#b4", "G#9", "4C", ""])
def test_bad_pitch_names(name):
    with pytest.raises(CapsuleError):
        pitch_from_name(name)


def test_durations_rests_and_positions():
    notes = parse_notation("C4:1/2 D4:0.5 R:1 E4:3/2 F4:1/2")
    assert notes == [
        (0, 60, Fraction(1, 2)),
        (Fraction(1, 2), 62, Fraction(1, 2)),
        (2, 64, Fraction(3, 2)),
        (Fraction(7, 2), 65, Fraction(1, 2)),
    ]


def test_lines_are_joined():
    assert parse_notation(["C4:2 D4:2 |", "E4:4 |"]) == parse_notation("C4:2 D4:2 | E4:4 |")


def test_tie_across_a_bar_line():
    notes = parse_notation("C4:2 D4:2~ | D4:1 E4:3 |")
    assert notes == [(0, 60, 2), (2, 62, 3), (5, 64, 3)]


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("C4:1 X4:1", r"token 2 'X4:1'"),
        ("C4:1 D4", r"'D4' has no duration"),
        ("C4:0", r"'C4:0'.*more than 0"),
        ("C4:-1", r"'C4:-1'"),
        ("C4:abc", r"'C4:abc'.*not a number"),
        ("C4:1/0", r"'C4:1/0'"),
        ("C10:1", r"'C10:1'.*outside the MIDI range"),
        ("C4:1~ D4:1", r"tie from 'C4:1~'"),
        ("C4:1~ R:1", r"tie from 'C4:1~'"),
        ("R:1~ C4:1", r"rest cannot be tied"),
        ("C4:1 D4:1~", r"'D4:1~' is tied to nothing"),
        ("| |", r"no notes"),
        ("C4:4 | | D4:4", r"empty bar"),
    ],
)
def test_bad_tokens_are_named(text, pattern):
    with pytest.raises(CapsuleError, match=pattern):
        parse_notation(text, where="test")


def test_wrong_bar_sum_names_the_bar():
    with pytest.raises(
        CapsuleError, match=r"song: bar 2 \(starting at token 'E4:2'\) lasts 3 beats, but a 4/4 bar needs 4"
    ):
        parse_notation("C4:4 | E4:2 F4:1 | G4:4 |", where="song")
    with pytest.raises(CapsuleError, match=r"bar 1 .* lasts 3 beats, but a 4/4 bar needs 4"):
        parse_notation("C4:1 D4:1 E4:1 |")
    with pytest.raises(CapsuleError, match=r"bar 2 .*lasts 2 beats"):  # the last bar is checked too
        parse_notation("C4:4 | D4:2")
    with pytest.raises(CapsuleError, match=r"3/4 bar needs 3"):
        parse_notation("C4:3 | D4:4 |", time_signature=(3, 4))


def test_without_bar_lines_nothing_is_checked():
    assert len(parse_notation("C4:1 D4:1 E4:1")) == 3


def test_pickup_is_placed_before_the_first_bar_line():
    notes = parse_notation("G3:1 | C4:4 |", pickup=1)
    assert notes == [(3, 55, 1), (4, 60, 4)]
    notes = parse_notation("E5:1/4 D#5:1/4 | A4:3/2 |", time_signature=(3, 8), pickup="1/2")
    assert [start for start, _, _ in notes] == [1, Fraction(5, 4), Fraction(3, 2)]
    with pytest.raises(CapsuleError, match=r"pickup bar .* lasts 2 beats, but the pickup is 1"):
        parse_notation("G3:1 A3:1 | C4:4 |", pickup=1)
    with pytest.raises(CapsuleError, match="must be shorter"):
        parse_notation("C4:4 |", pickup=4)


def test_from_notation_builds_a_playable_score():
    score = from_notation("C4:1 E4:1 G4:1/2 R:1/2 C5:1 | C4:4 |", tempo=90, title="mine", resolution=12)
    assert score.title == "mine" and score.tempo == 90 and score.resolution == 12
    assert [(n.start, n.pitch, n.duration) for n in score.notes] == [
        (0, 60, 12),
        (12, 64, 12),
        (24, 67, 6),
        (36, 72, 12),
        (48, 60, 48),
    ]
    velocities = [n.velocity for n in score.notes]
    assert velocities[0] == velocities[-1] > velocities[1]  # downbeats are accented
    with pytest.raises(CapsuleError, match="tempo 200"):
        from_notation("C4:1", tempo=200)
