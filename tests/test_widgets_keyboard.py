"""The virtual keyboard's Python side: events set by hand, as the browser would, give exact scores."""

from __future__ import annotations

import re

import pytest
import traitlets

from capsule_lib import CapsuleError, Note, Score, Track, edit
from capsule_lib.widgets import VirtualKeyboard
from capsule_lib.widgets.keyboard import HOT_KEYS, N_KEYS


def ev(pitch, start, end, velocity=100):
    return {"pitch": pitch, "velocity": velocity, "start": start, "end": end}


def keyboard(events, **traits) -> VirtualKeyboard:
    kb = VirtualKeyboard(**traits)
    kb.events = events
    return kb


# -- milliseconds to steps ------------------------------------------------------------
def test_defaults():
    kb = VirtualKeyboard()
    assert (kb.tempo, kb.octave, kb.countdown, kb.metronome, kb.recording) == (120, 48, False, False, False)
    assert (kb.arpeggiator, kb.arp_pattern, kb.arp_rate, kb.auto_chord, kb.sustain, kb.tap_bpm) == (
        False,
        "up",
        6,
        False,
        False,
        0.0,
    )
    assert kb.events == [] and kb.pedal_events == []


def test_times_convert_exactly_at_the_tempo():
    # 120 bpm: a beat is 500 ms = 24 steps.
    kb = keyboard([ev(60, 0, 500), ev(64, 500, 750, 90), ev(67, 1000, 2000, 80)], tempo=120)
    score = kb.score()
    assert isinstance(score, Score)
    assert score.tempo == 120 and score.resolution == 24 and score.time_signature == (4, 4)
    assert len(score.tracks) == 1
    track = score.tracks[0]
    assert (track.name, track.program, track.is_drum, track.pedals) == ("keyboard", 0, False, ())
    assert track.notes == (Note(0, 60, 24, 100), Note(24, 64, 12, 90), Note(48, 67, 48, 80))


def test_other_tempi_and_rounding_halves_up():
    # 60 bpm: 1000 ms = 24 steps.
    assert keyboard([ev(60, 1000, 1500)], tempo=60).score().notes == (Note(24, 60, 12),)
    # 125 bpm: a step is exactly 20 ms; 10 ms is half a step (rounds up), 29.9 ms is 1.495 steps.
    assert keyboard([ev(60, 10, 29.9)], tempo=125).score().notes == (Note(1, 60, 1),)
    assert keyboard([ev(60, 30, 70)], tempo=125).score().notes == (Note(2, 60, 2),)  # 1.5 -> 2, 3.5 -> 4
    # A tap too short for a step still gives a one-step note; fractional ms are fine.
    assert keyboard([ev(72, 100.25, 100.5)], tempo=120).score().notes == (Note(5, 72, 1),)


def test_events_in_any_order_and_velocity_is_clamped():
    kb = keyboard([ev(67, 1000, 1500, 200), ev(60, 0, 500, 0), ev(64, 500, 1000, 63.6)])
    assert kb.score().notes == (Note(0, 60, 24, 1), Note(24, 64, 24, 64), Note(48, 67, 24, 127))
    assert keyboard([{"pitch": 60, "start": 0, "end": 500}]).score().notes == (Note(0, 60, 24, 100),)


def test_same_key_from_two_sources_stays_playable():
    # The mouse and a hot key on the same pitch, overlapping: the first is cut where the second starts.
    kb = keyboard([ev(60, 0, 1000), ev(60, 500, 1500)])
    assert kb.score().notes == (Note(0, 60, 24), Note(24, 60, 48))


def test_empty_recording_is_a_clear_error():
    with pytest.raises(CapsuleError, match=r"^nothing recorded yet: press record and play some keys$"):
        VirtualKeyboard().score()
    kb = keyboard([ev(60, 0, 500)])
    kb.clear()
    assert kb.events == [] and kb.pedal_events == []
    with pytest.raises(CapsuleError, match="nothing recorded yet"):
        kb.score()


@pytest.mark.parametrize(
    "event, message",
    [
        (ev(128, 0, 500), "recorded event 0 pitch 128 is outside the MIDI range 0-127"),
        (ev(60.5, 0, 500), "recorded event 0 pitch must be a whole number"),
        ({"pitch": 60, "start": 0}, "recorded event 0 .* needs pitch, start and end"),
        (ev(60, "soon", 500), "recorded event 0 start must be a finite number"),
        (ev(60, 0, float("nan")), "recorded event 0 end must be a finite number"),
    ],
)
def test_malformed_events_are_named(event, message):
    with pytest.raises(CapsuleError, match=message):
        keyboard([event]).score()


# -- rhythm assist, auto-chord, arpeggiator, sustain ---------------------------------------
def test_quantize_is_rhythm_assist_through_edit_quantize():
    # 530 ms = 25.44 -> 25 steps; 980 ms = 47.04 -> 47 steps; 16th grid = 6 steps.
    kb = keyboard([ev(60, 0, 230), ev(62, 530, 980)])
    assert kb.score().notes == (Note(0, 60, 11), Note(25, 62, 22))
    assert kb.score(quantize=True).notes == (Note(0, 60, 12), Note(24, 62, 24))
    assert kb.score(quantize=True) == edit.quantize(kb.raw_score())
    assert kb.score(quantize=True, grid=24) == edit.quantize(kb.raw_score(), 24)
    assert kb.score(quantize=True, grid=24).notes == (Note(0, 60, 24), Note(24, 62, 24))
    with pytest.raises(CapsuleError, match="without quantize=True"):
        kb.score(grid=6)
    with pytest.raises(CapsuleError, match="quantize grid 0"):
        kb.score(quantize=True, grid=0)


def test_auto_chord_goes_through_edit_auto_chord():
    kb = keyboard([ev(60, 0, 500), ev(62, 500, 1000), ev(66, 1000, 1500)], auto_chord=True)
    raw = kb.raw_score()
    assert kb.score() == edit.auto_chord(raw, "C major")
    # C major: C-E-G, D-F-A; F# is outside the key, so a major triad F#-A#-C#.
    assert [(n.start, n.pitch) for n in kb.score().notes] == [
        (0, 60),
        (0, 64),
        (0, 67),
        (24, 62),
        (24, 65),
        (24, 69),
        (48, 66),
        (48, 70),
        (48, 73),
    ]
    kb.chord_key = "A minor"
    assert kb.score() == edit.auto_chord(raw, "A minor")
    kb.chord_key = ""  # detect the key from the take
    assert kb.score() == edit.auto_chord(raw)
    kb.auto_chord = False
    assert kb.score() == raw


def test_arpeggiator_groups_a_played_chord_and_uses_edit_arpeggiate():
    # C-E-G pressed within 40 ms (a human chord), held one beat at 120 bpm.
    kb = keyboard([ev(60, 0, 500), ev(64, 20, 500), ev(67, 40, 500)], arpeggiator=True, arp_pattern="up")
    chord = Score.from_notes(
        [Note(0, 60, 24), Note(0, 64, 24), Note(0, 67, 24)], name="keyboard", title="keyboard take"
    )
    assert kb.score() == edit.arpeggiate(chord, "up", 6)
    assert [(n.start, n.pitch, n.duration) for n in kb.score().notes] == [
        (0, 60, 6),
        (6, 64, 6),
        (12, 67, 6),
        (18, 60, 6),
    ]
    kb.arp_pattern = "down"
    assert [n.pitch for n in kb.score().notes] == [67, 64, 60, 67]
    kb.arp_pattern = "up-down"  # the widget's spelling of edit's "updown"
    assert kb.arp_pattern == "updown"
    assert kb.score() == edit.arpeggiate(chord, "updown", 6)
    kb.arp_rate = 12
    assert kb.score() == edit.arpeggiate(chord, "updown", 12)


def test_arpeggiator_follows_the_tapped_tempo():
    kb = keyboard([ev(60, 0, 1000), ev(64, 0, 1000)], arpeggiator=True)
    kb.taps = [10.0, 10.25, 10.5, 10.75]  # every quarter second -> 240 bpm (edit.tap_tempo)
    assert kb.tap_bpm == pytest.approx(240.0)
    raw = kb.raw_score()
    assert kb.score() == edit.arpeggiate(raw, "up", tap_bpm=240.0)
    # 16ths of 240 bpm while the score plays at 120: round(24 / 4 * 120 / 240) = 3 steps each.
    assert [n.start for n in kb.score().notes] == list(range(0, 48, 3))
    kb.taps = [1.0]
    assert kb.tap_bpm == 0.0
    assert kb.score() == edit.arpeggiate(raw, "up", 6)


def test_notes_far_apart_are_not_one_chord():
    kb = keyboard([ev(60, 0, 500), ev(64, 100, 500)], arpeggiator=True)  # 100 ms > 60 ms window
    assert kb.score() == edit.arpeggiate(kb.raw_score(), "up", 6) == kb.raw_score()


def test_auto_chord_then_arpeggiator_arpeggiates_the_triad():
    kb = keyboard([ev(60, 0, 500)], auto_chord=True, arpeggiator=True, arp_pattern="down")
    expected = edit.arpeggiate(edit.auto_chord(kb.raw_score(), "C major"), "down", 6)
    assert kb.score() == expected
    assert [n.pitch for n in kb.score().notes] == [67, 64, 60, 67]


def test_sustain_pedal_is_recorded_and_resolved():
    # Pedal down 0-1000 ms; C released at 250 ms keeps sounding to 1000 ms; G after the pedal is untouched.
    kb = keyboard([ev(60, 0, 250), ev(67, 1000, 1250)])
    kb.pedal_events = [{"start": 0, "end": 1000}]
    raw = kb.score(resolve_sustain=False)
    assert raw.tracks[0].pedals == ((0, 48),)
    assert raw.notes == (Note(0, 60, 12), Note(48, 67, 12))
    resolved = kb.score()
    assert resolved == edit.resolve_sustain(raw)
    assert resolved.tracks[0].pedals == ()
    assert resolved.notes == (Note(0, 60, 48), Note(48, 67, 12))
    kb.pedal_events = [{"start": 0}]
    with pytest.raises(CapsuleError, match="pedal event 0"):
        kb.score()


# -- traits, validation, callbacks -----------------------------------------------------
@pytest.mark.parametrize("bpm", [39, 161, 0, -120])
def test_tempo_outside_40_160_is_refused(bpm):
    with pytest.raises(CapsuleError, match=rf"tempo {bpm} bpm is outside 40-160"):
        VirtualKeyboard(tempo=bpm)
    kb = VirtualKeyboard()
    with pytest.raises(CapsuleError):
        kb.tempo = bpm
    assert kb.tempo == 120


def test_tempo_must_be_a_whole_number():
    with pytest.raises(traitlets.TraitError):
        VirtualKeyboard(tempo="fast")
    assert VirtualKeyboard(tempo=40).tempo == 40 and VirtualKeyboard(tempo=160).tempo == 160


@pytest.mark.parametrize("octave", [50, 12, 96, -12])
def test_octave_must_be_a_c_in_range(octave):
    with pytest.raises(CapsuleError, match=f"octave {octave} must be the MIDI number of a C"):
        VirtualKeyboard(octave=octave)


def test_octave_moves_by_whole_octaves():
    kb = VirtualKeyboard()
    kb.octave += 12
    assert kb.octave == 60
    kb.octave = 24
    kb.octave = 84  # C6 .. G8, still inside MIDI
    assert kb.octave + N_KEYS - 1 <= 127


def test_other_traits_are_validated():
    with pytest.raises(CapsuleError, match="arpeggio pattern 'sideways' is not one of up, down, up-down, random"):
        VirtualKeyboard(arp_pattern="sideways")
    with pytest.raises(CapsuleError, match="arpeggio rate 0"):
        VirtualKeyboard(arp_rate=0)
    with pytest.raises(CapsuleError, match="tapped tempo"):
        VirtualKeyboard(tap_bpm=-1)
    with pytest.raises(CapsuleError, match="key 'H major'"):
        VirtualKeyboard(chord_key="H major")
    for pattern in ("up", "down", "updown", "random"):
        assert VirtualKeyboard(arp_pattern=pattern).arp_pattern == pattern


def test_on_recorded_gets_each_take_as_a_score():
    kb = VirtualKeyboard(tempo=120)
    takes = []
    kb.on_recorded(takes.append)
    kb.events = [ev(60, 0, 500)]  # what the browser does when stop is pressed
    assert takes == [Score(tracks=(Track("keyboard", notes=(Note(0, 60, 24),)),), tempo=120.0, title="keyboard take")]
    kb.clear()  # an empty take does not call back
    assert len(takes) == 1
    kb.events = [ev(62, 0, 250)]
    assert takes[-1].notes == (Note(0, 62, 12),)
    kb.on_recorded(takes.append, remove=True)
    kb.events = [ev(64, 0, 250)]
    assert len(takes) == 2


def test_hot_key_map_is_chromatic_from_the_lowest_key():
    assert list(HOT_KEYS.values()) == list(range(18))
    assert "".join(HOT_KEYS) == "awsedftgyhujkolp;'"
    assert VirtualKeyboard().hot_keys == HOT_KEYS
    doc = VirtualKeyboard.__doc__
    assert "z`` / ``x" in doc and "Space" in doc


def test_state_syncs_and_the_es_module_has_the_test_hooks():
    kb = VirtualKeyboard(tempo=90, countdown=True)
    state = kb.get_state()
    for name in (
        "tempo",
        "metronome",
        "countdown",
        "octave",
        "arpeggiator",
        "arp_pattern",
        "arp_rate",
        "auto_chord",
        "sustain",
        "recording",
        "events",
        "pedal_events",
        "midi_status",
        "tap_bpm",
        "taps",
        "chord_key",
    ):
        assert name in state
    assert state["tempo"] == 90 and state["countdown"] is True
    js = VirtualKeyboard._esm
    source = js.read_text() if hasattr(js, "read_text") else str(js)
    assert "export default" in source and "import " not in re.sub(r"//.*", "", source)
    for hook in (
        "record",
        "stop",
        "play",
        "octave-up",
        "octave-down",
        "metronome",
        "countdown",
        "tempo",
        "arpeggiator",
        "arp-pattern",
        "auto-chord",
        "sustain",
        "tap-tempo",
        "status",
        "midi-status",
        "key",
    ):
        assert f'"{hook}"' in source, hook
    assert "capsule-keyboard" in source and 'tabindex: "0"' in source
