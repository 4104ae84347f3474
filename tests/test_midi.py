"""MIDI import/export: exact round trips and every awkward input the issue lists."""

import hashlib

import mido
import pytest
from hypothesis import HealthCheck, assume, given, settings
from strategies import grid_scores

from capsule_lib import (
    CapsuleError,
    Note,
    Score,
    Track,
    from_multitrack_pianoroll,
    midi_bytes,
    pick_melody,
    read_midi,
    to_multitrack_onsets,
    to_multitrack_pianoroll,
    write_midi,
)


def _same_music(a: Score, b: Score):
    assert len(a.tracks) == len(b.tracks)
    for ta, tb in zip(a.tracks, b.tracks):
        assert ta.notes == tb.notes
        assert ta.program == tb.program
        assert ta.is_drum == tb.is_drum
    assert a.tempo == pytest.approx(b.tempo, abs=1e-3)
    assert a.time_signature == b.time_signature


def _file(tmp_path, tracks, *, tpb=480, type_=1, name="in.mid"):
    mid = mido.MidiFile(type=type_, ticks_per_beat=tpb)
    for msgs in tracks:
        t = mido.MidiTrack()
        t.extend(msgs)
        mid.tracks.append(t)
    path = tmp_path / name
    mid.save(path)
    return path


def on(note, time=0, vel=90, ch=0):
    return mido.Message("note_on", note=note, velocity=vel, time=time, channel=ch)


def off(note, time=0, ch=0):
    return mido.Message("note_off", note=note, velocity=0, time=time, channel=ch)


# --- round trips ---------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid_scores())
def test_midi_roll_round_trip_is_exact_on_the_grid(score):
    """MIDI → score → piano roll → score → MIDI loses, shortens and merges nothing."""
    first = read_midi(midi_bytes(score), track="all", resolution=score.resolution)
    _same_music(first, score)
    rolls = to_multitrack_pianoroll(first)
    onsets = to_multitrack_onsets(first)
    back = from_multitrack_pianoroll(
        rolls,
        onsets,
        names=[t.name for t in first.tracks],
        programs=[t.program for t in first.tracks],
        drums=[t.is_drum for t in first.tracks],
        resolution=first.resolution,
        tempo=first.tempo,
        time_signature=first.time_signature,
    )
    _same_music(back, score)
    again = read_midi(midi_bytes(back), track="all", resolution=score.resolution)
    _same_music(again, score)


def _nested(track):
    """True if a note lies inside a longer same-pitch note: MIDI itself cannot pair those unambiguously."""
    notes = track.notes
    return any(a.pitch == b.pitch and a.start <= b.start and b.end < a.end for a in notes for b in notes if a is not b)


@settings(max_examples=40, deadline=None)
@given(grid_scores(allow_same_pitch_overlap=True))
def test_overlapping_same_pitch_notes_survive_midi(score):
    """Overlaps pair first-in first-out: exact whenever a later note also ends later."""
    assume(not any(_nested(t) for t in score.tracks))
    back = read_midi(midi_bytes(score), track="all", resolution=score.resolution)
    _same_music(back, score)


def test_tempo_changes_round_trip_and_keep_note_positions():
    s = Score(
        tracks=(Track("m", notes=(Note(0, 60, 4), Note(8, 62, 4))),),
        tempo=90.0,
        tempo_changes=((8, 60.0), (16, 150.0)),
        resolution=4,
    )
    back = read_midi(midi_bytes(s), track="all", resolution=4)
    assert back.tempo == 90.0
    assert back.tempo_changes == ((8, 60.0), (16, 150.0))
    assert back.tracks[0].notes == s.tracks[0].notes
    # 8 steps at 90 bpm = 2 beats = 1.333 s, then 4 steps at 60 bpm = 1 s
    assert back.step_to_seconds(12) == pytest.approx(2 * 60 / 90 + 1.0)


def test_write_midi_is_atomic_and_checks_suffix(tmp_path):
    s = Score.from_notes([(0, 60, 4)], resolution=4)
    target = tmp_path / "song.mid"
    target.write_bytes(b"old")
    with pytest.raises(CapsuleError, match=r"\.mid"):
        write_midi(s, tmp_path / "song.txt")
    write_midi(s, target)
    assert read_midi(target, resolution=4).notes == s.notes
    assert [p.name for p in tmp_path.iterdir()] == ["song.mid"]  # no temp files left


# --- import behaviour ------------------------------------------------------------


def test_resolution_maps_ticks_by_rounding(tmp_path):
    # 480 ticks/beat; a 16th is 120 ticks. A note at tick 125 lands on step 1 at 4 steps/beat.
    p = _file(tmp_path, [[on(60, 125), off(60, 115)]])
    s = read_midi(p, resolution=4)
    assert s.notes == (Note(1, 60, 1, 90),)
    s24 = read_midi(p, resolution=24)
    assert s24.notes == (Note(6, 60, 6, 90),)


def test_multiple_tracks_melody_pick_and_track_selection(tmp_path):
    bass = [mido.MetaMessage("track_name", name="bass"), mido.Message("program_change", program=33, channel=1)]
    bass += [on(36, 0, ch=1), off(36, 480, ch=1)] * 4
    melody = [mido.MetaMessage("track_name", name="tune"), mido.Message("program_change", program=73, channel=0)]
    melody += [on(72, 0), off(72, 240), on(74, 0), off(74, 240)] * 2
    drums = [on(36, 0, ch=9), off(36, 0, ch=9), on(42, 240, ch=9), off(42, 0, ch=9)]
    p = _file(tmp_path, [[mido.MetaMessage("set_tempo", tempo=500000)], bass, melody, drums])
    everything = read_midi(p, track="all")
    assert [t.name for t in everything.tracks] == ["bass", "tune", "drums"]
    assert [t.program for t in everything.tracks] == [33, 73, 0]
    assert [t.is_drum for t in everything.tracks] == [False, False, True]
    melody_only = read_midi(p)
    assert melody_only.tracks[0].name == "tune" and len(melody_only.tracks) == 1
    assert read_midi(p, track="bass").tracks[0].program == 33
    assert read_midi(p, track=0).tracks[0].name == "bass"
    with pytest.raises(CapsuleError, match="no track named 'violin'"):
        read_midi(p, track="violin")
    with pytest.raises(CapsuleError, match="track 7 does not exist"):
        read_midi(p, track=7)


def test_zero_length_notes_last_one_step_and_drums_are_flagged(tmp_path):
    p = _file(tmp_path, [[on(38, 0, ch=9), off(38, 0, ch=9), on(38, 480, ch=9), off(38, 0, ch=9)]])
    s = read_midi(p, track="all", resolution=4)
    assert s.tracks[0].is_drum
    assert s.tracks[0].notes == (Note(0, 38, 1, 90), Note(4, 38, 1, 90))
    with pytest.raises(CapsuleError, match="only drum tracks"):
        read_midi(p)


def test_overlapping_notes_and_velocity_zero_note_off(tmp_path):
    # C4 held 0..960; a second C4 starts at 480 before the first ends; ends at 1440. Offs as note_on vel 0.
    msgs = [on(60, 0), on(60, 480), on(60, 480, vel=0), on(60, 480, vel=0)]
    s = read_midi(_file(tmp_path, [msgs]), resolution=4)
    assert s.notes == (Note(0, 60, 8, 90), Note(4, 60, 8, 90))


def test_stuck_note_ends_with_its_track(tmp_path):
    msgs = [on(64, 0), on(67, 0), off(67, 480), mido.MetaMessage("text", text="x", time=480)]
    s = read_midi(_file(tmp_path, [msgs]), resolution=4)
    assert s.notes == (Note(0, 64, 8, 90), Note(0, 67, 4, 90))


def test_running_status_bytes_are_read(tmp_path):
    # Hand-written SMF: note-ons for C, E, G use running status (status byte 0x90 once).
    events = bytes(
        [
            0x00,
            0x90,
            60,
            100,
            0x00,
            64,
            100,
            0x00,
            67,
            100,
            0x83,
            0x60,
            60,
            0,
            0x00,
            64,
            0,
            0x00,
            67,
            0,  # delta 480 (0x83 0x60), vel 0 = off
            0x00,
            0xFF,
            0x2F,
            0x00,
        ]
    )
    data = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (480).to_bytes(2, "big")
    data += b"MTrk" + len(events).to_bytes(4, "big") + events
    s = read_midi(data, resolution=4)
    assert s.notes == (Note(0, 60, 4, 100), Note(0, 64, 4, 100), Note(0, 67, 4, 100))


def test_type0_file_is_split_by_channel(tmp_path):
    msgs = [on(72, 0, ch=0), on(48, 0, ch=1), off(72, 480, ch=0), off(48, 0, ch=1)]
    s = read_midi(_file(tmp_path, [msgs], type_=0), track="all", resolution=4)
    assert len(s.tracks) == 2
    assert [t.notes[0].pitch for t in s.tracks] == [72, 48]
    assert read_midi(_file(tmp_path, [msgs], type_=0, name="b.mid")).notes[0].pitch == 72


@pytest.mark.parametrize("num,den", [(3, 4), (6, 8), (5, 4), (7, 8), (2, 2)])
def test_non_four_four_signatures(tmp_path, num, den):
    msgs = [mido.MetaMessage("time_signature", numerator=num, denominator=den), on(60, 0), off(60, 480 * 8)]
    s = read_midi(_file(tmp_path, [msgs]), resolution=4)
    assert s.time_signature == (num, den)
    assert s.steps_per_bar == num * 4 * 4 // den
    back = read_midi(midi_bytes(s), resolution=4)
    assert back.time_signature == (num, den)


def test_sustain_pedal_is_kept_as_intervals(tmp_path):
    cc = lambda v, t: mido.Message("control_change", control=64, value=v, time=t)  # noqa: E731
    msgs = [cc(127, 0), on(60, 0), off(60, 240), cc(0, 720)]
    s = read_midi(_file(tmp_path, [msgs]), resolution=4)
    assert s.tracks[0].pedals == ((0, 8),)
    assert read_midi(midi_bytes(s), resolution=4).tracks[0].pedals == ((0, 8),)


# --- bad input ------------------------------------------------------------------


def _good_bytes():
    return midi_bytes(Score.from_notes([(0, 60, 4), (4, 64, 4)], resolution=4))


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "is empty"),
        (b"hello, this is text", "not a MIDI file"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a MIDI file"),
        (_good_bytes()[:30], "corrupt or truncated"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01", "corrupt or truncated"),
        (_good_bytes()[:14] + b"MTrk\xff\xff\xff\xff" + b"\x00\x90", "corrupt or truncated"),
    ],
)
def test_bad_bytes_raise_one_line_capsule_error(data, message):
    with pytest.raises(CapsuleError, match=message) as info:
        read_midi(data)
    assert "\n" not in str(info.value)


def test_file_without_notes_is_refused(tmp_path):
    p = _file(tmp_path, [[mido.MetaMessage("set_tempo", tempo=400000)]])
    with pytest.raises(CapsuleError, match="contains no notes"):
        read_midi(p)


def test_oversized_and_wrong_paths(tmp_path):
    big = tmp_path / "big.mid"
    big.write_bytes(_good_bytes() + b"\0" * 2000)
    with pytest.raises(CapsuleError, match="limit"):
        read_midi(big, max_bytes=1000)
    with pytest.raises(CapsuleError, match="does not exist"):
        read_midi(tmp_path / "missing.mid")
    with pytest.raises(CapsuleError, match="not a MIDI file"):
        read_midi(tmp_path / "notes.txt")
    folder = tmp_path / "dir.mid"
    folder.mkdir()
    with pytest.raises(CapsuleError, match="folder"):
        read_midi(folder)


def test_smpte_division_is_refused():
    data = bytearray(_good_bytes())
    data[12:14] = (0xE728).to_bytes(2, "big")  # -25 fps, 40 ticks per frame
    with pytest.raises(CapsuleError, match="SMPTE|corrupt"):
        read_midi(bytes(data))


def test_input_file_is_never_modified(tmp_path):
    for i, payload in enumerate([_good_bytes(), _good_bytes()[:25], b"junk"]):
        p = tmp_path / f"f{i}.mid"
        p.write_bytes(payload)
        before = hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns
        try:
            read_midi(p)
        except CapsuleError:
            pass
        assert (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) == before


def test_pick_melody_prefers_high_busy_track():
    low = Track("bass", notes=tuple(Note(i * 4, 40, 4) for i in range(8)))
    high = Track("lead", notes=tuple(Note(i * 2, 76, 2) for i in range(16)))
    sparse = Track("bell", notes=(Note(0, 100, 4),))
    assert pick_melody(Score(tracks=(low, high, sparse))) == 1
