"""The last MIDI edge cases of issue 18: tempo extremes, non-Latin-1 text, notes never
released, the beat limit at the edge, a zero time division and RMID files.

Each case keeps the promise of :mod:`capsule_lib.midi`: a one-line CapsuleError or a
score, and every score read (or edited) can be written, and every file written reads back.
"""

from __future__ import annotations

import struct

import pytest

from capsule_lib import CapsuleError, Note, Score, Track, midi, midi_bytes, read_midi, write_midi
from capsule_lib.edit import quantize, set_tempo
from capsule_lib.midi import MAX_BEATS
from capsule_lib.score import MAX_BPM, MIN_BPM


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _smf(events: bytes, *, tpb: int = 480) -> bytes:
    """A type-0 file with one track of raw ``events`` (delta-time + message bytes), end of track added."""
    body = events + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpb) + b"MTrk" + struct.pack(">I", len(body)) + body


def _tempo(us: int, delta: int = 0) -> bytes:
    return _vlq(delta) + b"\xff\x51\x03" + us.to_bytes(3, "big")


def _note(pitch: int = 60, length: int = 480, delta: int = 0) -> bytes:
    return _vlq(delta) + bytes([0x90, pitch, 90]) + _vlq(length) + bytes([0x80, pitch, 0])


def _round_trips(score: Score) -> Score:
    again = read_midi(midi_bytes(score), track="all", resolution=score.resolution)
    assert [t.notes for t in again.tracks] == [t.notes for t in score.tracks]
    return again


# -- 1. tempo edge cases ------------------------------------------------------------------


def test_a_tempo_of_zero_reads_as_the_fastest_midi_tempo_and_writes_back():
    score = read_midi(_smf(_tempo(0) + _note()))
    assert score.tempo == MAX_BPM
    again = _round_trips(score)
    assert again.tempo == MAX_BPM


def test_a_later_tempo_change_of_zero_reads_too():
    score = read_midi(_smf(_tempo(500_000) + _note() + _tempo(0) + _note(62)))
    assert score.tempo == 120 and score.tempo_changes == ((24, MAX_BPM),)
    assert _round_trips(score).tempo_changes == ((24, MAX_BPM),)


def test_the_largest_legal_tempo_reads_and_writes_back_unchanged():
    score = read_midi(_smf(_tempo(0xFFFFFF) + _note()))
    assert score.tempo == MIN_BPM  # 3.5763 bpm, rounded up to what MIDI can store at 1/1000 bpm
    again = _round_trips(score)
    assert again.tempo == MIN_BPM
    assert read_midi(midi_bytes(again)).tempo == MIN_BPM


def test_a_score_never_holds_a_tempo_midi_cannot_store():
    for bad in (MIN_BPM / 2, MAX_BPM * 2, float("nan"), float("inf"), 0, -5):
        with pytest.raises(CapsuleError, match="bpm|positive|tempo"):
            Score.from_notes([(0, 60, 4)], tempo=bad)
        with pytest.raises(CapsuleError, match="tempo change"):
            Score(tracks=(Track(notes=(Note(0, 60, 4),)),), tempo_changes=((4, bad),))


def test_set_tempo_keeps_scaled_tempo_changes_within_midi_range():
    slow_change = Score(tracks=(Track(notes=(Note(0, 60, 4), Note(8, 62, 4))),), tempo=160.0, tempo_changes=((4, 5.0),))
    slower = set_tempo(slow_change, 40)  # 5 x 40/160 = 1.25 bpm: below what MIDI can store
    assert slower.tempo_changes == ((4, MIN_BPM),)
    _round_trips(slower)
    fast_change = slow_change.replace(tempo=40.0, tempo_changes=((4, MAX_BPM),))
    faster = set_tempo(fast_change, 160)  # 4x faster than 1 us per beat would be 0 us: refused by MIDI
    assert faster.tempo_changes == ((4, MAX_BPM),)
    assert read_midi(midi_bytes(faster)).tempo_changes == ((4, MAX_BPM),)


# -- 2. non-Latin-1 text ---------------------------------------------------------------------


def test_titles_and_track_names_beyond_latin1_round_trip(tmp_path):
    score = Score(
        tracks=(Track(name="Skřipky 🎻", notes=(Note(0, 60, 4),)), Track(name="声部", notes=(Note(0, 64, 4),))),
        title="Humoresque (Dvořák)",
    )
    path = write_midi(score, tmp_path / "dvorak.mid")
    again = read_midi(path, track="all")
    assert again.title == "Humoresque (Dvořák)"
    assert [t.name for t in again.tracks] == ["Skřipky 🎻", "声部"]


def test_latin1_names_written_by_other_software_still_read():
    name = "Café".encode("latin-1")  # a lone 0xE9 byte is not UTF-8
    events = _vlq(0) + b"\xff\x03" + _vlq(len(name)) + name + _note()
    assert read_midi(_smf(events)).tracks[0].name == "Café"


def test_a_title_that_is_not_valid_unicode_text_is_written_with_a_replacement():
    score = Score.from_notes([(0, 60, 4)], title="bad \udcff byte")  # a command-line argument's undecodable byte
    assert read_midi(midi_bytes(score)).title == "bad ? byte"


def test_a_non_latin1_title_saves_as_a_composition_with_its_full_title():
    from capsule_lib.store import CompositionStore

    store = CompositionStore()
    comp = store.add(Score.from_notes([(0, 60, 4)], title="Humoresque (Dvořák)"))
    assert store.get(comp.id).title == "Humoresque (Dvořák)"
    assert store.load(comp.id).title == "Humoresque (Dvořák)"
    assert store.add(Score.from_notes([(0, 60, 4)]), title="x \udcff").title == "x ?"


# -- 5. the note cap counts every note ----------------------------------------------------


def test_notes_never_released_count_towards_the_note_cap(monkeypatch):
    monkeypatch.setattr(midi, "MAX_NOTES", 50)  # the real cap (200 000) works the same, only slower
    on = b"".join(_vlq(1) + bytes([0x90, 60 + i % 12, 90]) for i in range(51))
    with pytest.raises(CapsuleError, match="more than 50 notes"):
        read_midi(_smf(on))
    assert len(read_midi(_smf(on[: 50 * 4])).notes) == 50


# -- 6. what write_midi writes, read_midi reads ---------------------------------------------


def test_a_note_pushed_past_the_beat_limit_is_refused_when_written_not_on_reading():
    res = 4
    last = MAX_BEATS * res - 1  # a one-step note ending exactly on the limit
    score = Score.from_notes([(0, 60, 4), (last, 62, 1)], resolution=res)
    _round_trips(score)
    pushed = quantize(score, grid=4)  # its end snaps to the next grid line, past the limit
    assert pushed.end > MAX_BEATS * res
    with pytest.raises(CapsuleError, match=f"longer than the {MAX_BEATS}-beat limit"):
        midi_bytes(pushed)


def test_a_zero_length_note_on_the_beat_limit_is_refused_on_reading():
    # It would last one step, ending past the limit: a score write_midi would refuse.
    data = _smf(_note(length=0, delta=MAX_BEATS * 480))
    with pytest.raises(CapsuleError, match=f"{MAX_BEATS}-beat limit"):
        read_midi(data)


def test_write_midi_refuses_what_read_midi_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(midi, "MAX_NOTES", 50)
    many = Score.from_notes([(i, 60 + i % 2, 1) for i in range(51)], resolution=4)
    with pytest.raises(CapsuleError, match="51 notes"):
        write_midi(many, tmp_path / "many.mid")
    assert not (tmp_path / "many.mid").exists()
    with pytest.raises(CapsuleError, match="steps per beat"):
        midi_bytes(Score.from_notes([(0, 60, 4)], resolution=40_000))
    with pytest.raises(CapsuleError, match="time signature"):
        midi_bytes(Score.from_notes([(0, 60, 4)], time_signature=(300, 4)))


def test_quantize_refuses_a_grid_wider_than_sixteen_beats():
    score = Score.from_notes([(0, 60, 4)], resolution=4)
    assert quantize(score, grid=64).notes  # sixteen beats: allowed
    for grid in (65, 99999999999999999999):
        with pytest.raises(CapsuleError, match="longer than 16 beats"):
            quantize(score, grid=grid)


# -- 12. time division 0 and RMID names ---------------------------------------------------------


def test_a_time_division_of_zero_is_named_as_such():
    with pytest.raises(CapsuleError, match="time division of 0 ticks per beat") as info:
        read_midi(_smf(_note(), tpb=0))
    assert "SMPTE" not in str(info.value)


def test_rmid_files_are_read_under_their_rmi_name(tmp_path):
    smf = midi_bytes(Score.from_notes([(0, 60, 24), (24, 64, 24)]))
    riff = b"RIFF" + struct.pack("<I", len(smf) + 12) + b"RMIDdata" + struct.pack("<I", len(smf)) + smf
    path = tmp_path / "song.rmi"
    path.write_bytes(riff)
    assert [n.pitch for n in read_midi(path).notes] == [60, 64]
