"""Tests for capsule_lib.recording: live MIDI keyboard recording.

Real ``mido.Message`` streams go through a loopback mido backend
(``tests/midi_loopback.py``) into :func:`record_midi`, driven by fake time:
the fake ``sleep`` advances the fake clock and sends each scripted message
exactly at its time, so every timestamp, and so every step, is exact.  At
tempo 120 one beat is 0.5 s, and at 24 steps per beat one second is 48 steps.
Nothing here sleeps for real.
"""

from __future__ import annotations

import os
import sys
import threading

import mido
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # so mido.Backend("midi_loopback") can import it
import midi_loopback as loopback  # noqa: E402

from capsule_lib import (  # noqa: E402
    CapsuleError,
    Note,
    Score,
    Track,  # noqa: E402
)
from capsule_lib.recording import (  # noqa: E402
    COUNTDOWN_SECONDS,
    MidiRecorder,
    list_midi_ports,
    midi_status,
    record_midi,
)

C4, D4, E4, G4, A4 = 60, 62, 64, 67, 69


def on(pitch, velocity=100, channel=0):
    return mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def off(pitch, channel=0, zero_velocity_on=False):
    if zero_velocity_on:
        return mido.Message("note_on", note=pitch, velocity=0, channel=channel)
    return mido.Message("note_off", note=pitch, velocity=64, channel=channel)


def pedal(value, channel=0):
    return mido.Message("control_change", control=64, value=value, channel=channel)


class FakeTime:
    """A clock and a sleep; sleeping plays the scripted events that fall due.

    ``script`` holds ``(t, event)``: a message to send on the loopback output,
    ``"interrupt"`` (raise KeyboardInterrupt, as the notebook's stop button
    does) or a callable.  Events happen exactly at their time, in script order.
    """

    def __init__(self, out, script=(), limit=120.0):
        self.t = 0.0
        self.out = out
        self.script = sorted(script, key=lambda e: e[0])
        self.limit = limit
        self.n_sleeps = 0

    def clock(self):
        return self.t

    def sleep(self, dt):
        assert dt >= 0
        self.n_sleeps += 1
        target = self.t + dt
        while self.script and self.script[0][0] <= target:
            t, event = self.script.pop(0)
            self.t = max(self.t, t)
            if isinstance(event, str) and event == "interrupt":
                raise KeyboardInterrupt
            if callable(event):
                event()
            else:
                self.out.send(event)
        self.t = target
        assert self.t < self.limit, "the recording never stopped"


@pytest.fixture(autouse=True)
def _fresh_loopback():
    loopback.reset()
    yield
    loopback.reset()


def record(script, port_name="loop", backend=loopback, **kwargs):
    """Run record_midi over ``script``; return (score, fake time, beats announced)."""
    out = loopback.open_output(port_name)
    fake = FakeTime(out, script)
    beats = []
    kwargs.setdefault("countdown", False)
    kwargs.setdefault("on_beat", beats.append)
    score = record_midi(backend=backend, clock=fake.clock, sleep=fake.sleep, **kwargs)
    out.close()
    return score, fake, beats


def melody(tempo=120, **kwargs):
    return Score(tracks=(Track(name="melody", **kwargs),), tempo=tempo)


# -- the loopback backend itself ------------------------------------------------------
def test_loopback_delivers_real_messages_through_mido_backend():
    backend = mido.Backend("midi_loopback", load=True)
    assert backend.get_input_names() == ["loop"] and backend.get_output_names() == ["loop"]
    with backend.open_input("loop") as inp, backend.open_output("loop") as out:
        out.send(on(C4))
        out.send(off(C4))
        assert list(inp.iter_pending()) == [on(C4), off(C4)]
        assert inp.poll() is None
    got = []
    with backend.open_input("loop", callback=got.append), backend.open_output() as out:
        out.send(pedal(127))
    assert got == [pedal(127)]
    with pytest.raises(OSError):
        backend.open_input("nope")


# -- recording through a port -----------------------------------------------------------
SIMPLE = [
    (0.0, "on", C4, 100),
    (0.5, "off", C4, 0),
    (0.5, "on", D4, 100),
    (1.0, "off", D4, 0),
    (1.0, "on", E4, 80),
    (2.0, "off", E4, 0),
    (2.25, "on", G4, 127),
    (2.5, "off", G4, 0),
]
SIMPLE_NOTES = (Note(0, C4, 24, 100), Note(24, D4, 24, 100), Note(48, E4, 48, 80), Note(108, G4, 12, 127))


@pytest.mark.parametrize("zero_velocity_on", [False, True], ids=["note_off", "note_on-velocity-0"])
def test_simple_melody_at_120_bpm_is_exact(zero_velocity_on):
    script = [(t, on(p, v) if kind == "on" else off(p, zero_velocity_on=zero_velocity_on)) for t, kind, p, v in SIMPLE]
    score, fake, beats = record(script, tempo=120, seconds=4)
    assert score == melody(notes=SIMPLE_NOTES)
    assert score.resolution == 24 and score.time_signature == (4, 4)
    assert beats == list(range(8))  # a click on beats 0..7 of the 4 seconds (8 beats)
    assert fake.t == pytest.approx(4.0)
    assert loopback._inputs == []  # the port was closed


def test_other_tempo_and_resolution():
    # At 60 bpm one beat is a second; at 4 steps per beat 0.25 s is a step.
    script = [(0.25, on(C4)), (1.0, off(C4)), (1.0, on(D4)), (3.5, off(D4))]
    score, _, _ = record(script, tempo=60, resolution=4, seconds=4)
    assert score.tempo == 60 and score.resolution == 4
    assert score.notes == (Note(1, C4, 3), Note(4, D4, 10))


def test_sustain_pedal_kept_as_pedals_and_resolvable():
    script = [
        (0.0, on(C4)),
        (0.1, pedal(127)),
        (0.25, off(C4)),  # pedal down at step round(4.8) = 5
        (0.5, on(E4)),
        (0.75, off(E4)),
        (1.0, pedal(63)),  # 63 is "up"
        (1.0, on(G4)),
        (1.5, off(G4)),  # played after the pedal lifted: unchanged
        (2.0, pedal(64)),
        (2.1, pedal(100)),  # down again; a second "down" is no change
        (2.5, on(C4)),
        (2.75, off(C4)),  # the pedal is still down at the stop (4 s = step 192)
        (3.0, pedal(127, channel=9)),
        (3.2, pedal(0, channel=9)),  # drum-channel pedal ignored
    ]
    raw = (Note(0, C4, 12), Note(24, E4, 12), Note(48, G4, 24), Note(120, C4, 12))
    score, _, _ = record(script, tempo=120, seconds=4)
    assert score == melody(notes=raw, pedals=((5, 48), (96, 192)))

    resolved, _, _ = record(script, tempo=120, seconds=4, resolve_sustain=True)
    assert resolved == melody(notes=(Note(0, C4, 48), Note(24, E4, 24), Note(48, G4, 24), Note(120, C4, 72)))


def test_stuck_note_is_closed_at_the_stop():
    score, _, _ = record([(0.5, on(A4, 90)), (1.0, on(C4)), (1.5, off(C4))], tempo=120, seconds=2)
    assert score.notes == (Note(24, A4, 72, 90), Note(48, C4, 24))


def test_repeated_note_without_note_off_closes_the_previous_one():
    script = [
        (0.0, on(C4, 90)),
        (0.5, on(C4, 70)),
        (0.75, off(C4)),  # re-struck: 0-24 and 24-36
        (1.0, on(C4, 50)),
        (1.001, on(C4, 60)),
        (1.5, off(C4)),  # both on step 48: one note, the later
    ]
    score, _, _ = record(script, tempo=120, seconds=2)
    assert score.notes == (Note(0, C4, 24, 90), Note(24, C4, 12, 70), Note(48, C4, 24, 60))


def test_countdown_ignores_notes_and_counts_in_on_the_beat():
    seen = []
    script = [
        (1.0, on(C4)),
        (2.0, off(C4)),  # inside the countdown: ignored
        (4.0, pedal(127)),  # held through the start: counts from step 0
        (4.5, on(D4)),
        (5.25, off(D4)),  # started in the countdown: its note-off is ignored too
        (5.5, on(E4)),
        (6.0, off(E4)),
        (6.0, pedal(0)),
    ]
    score, fake, beats = record(
        script, tempo=120, countdown=True, seconds=2, on_message=lambda m, step: seen.append((m.type, step))
    )
    assert COUNTDOWN_SECONDS == 5.0
    assert score == melody(notes=(Note(24, E4, 24),), pedals=((0, 48),))
    assert beats == list(range(-10, 4))  # 10 count-in clicks over 5 s, then beats 0..3
    assert fake.t == pytest.approx(7.0)
    assert seen[:2] == [("note_on", -192), ("note_off", -144)]
    assert seen[-3:] == [("note_on", 24), ("note_off", 48), ("control_change", 48)]


def test_count_in_clicks_land_on_the_beat_grid():
    times = []
    out = loopback.open_output("loop")
    fake = FakeTime(out)
    record_midi(
        backend=loopback,
        tempo=100,
        countdown=5,
        seconds=1.2,
        clock=fake.clock,
        sleep=fake.sleep,
        on_beat=lambda i: times.append((i, fake.t)),
    )
    # 0.6 s a beat: 8 whole beats fit in 5 s, the first 0.2 s in, beat 0 exactly at 5 s.
    assert [i for i, _ in times] == list(range(-8, 2))
    assert [t for _, t in times] == pytest.approx([5.0 + 0.6 * i for i in range(-8, 2)])


def test_metronome_off_never_calls_on_beat():
    _, _, beats = record([(0.1, on(C4)), (0.2, off(C4))], tempo=120, seconds=1, metronome=False)
    assert beats == []


def test_drum_channel_is_kept_as_a_drum_track():
    script = [(0.0, on(C4)), (0.5, off(C4)), (0.5, on(36, 110, channel=9)), (0.6, off(36, channel=9))]
    score, _, _ = record(script, tempo=120, seconds=1, program=5)
    assert score.tracks == (
        Track(name="melody", program=5, notes=(Note(0, C4, 24),)),
        Track(name="drums", is_drum=True, notes=(Note(24, 36, 5, 110),)),  # 0.6 s = step round(28.8) = 29
    )


@pytest.mark.parametrize(
    "grid, expected", [(True, (Note(0, C4, 24), Note(24, D4, 12))), (12, (Note(0, C4, 24), Note(24, D4, 12)))]
)
def test_quantize(grid, expected):
    script = [(0.03, on(C4)), (0.49, off(C4)), (0.55, on(D4)), (0.8, off(D4))]  # steps 1-24 and 26-38
    raw, _, _ = record(script, tempo=120, seconds=1)
    assert raw.notes == (Note(1, C4, 23), Note(26, D4, 12))
    score, _, _ = record(script, tempo=120, seconds=1, quantize=grid)
    assert score.notes == expected


def test_stop_after_silence():
    script = [(0.5, on(C4)), (1.0, off(C4)), (1.5, on(D4)), (2.0, off(D4)), (4.5, on(E4)), (5.0, off(E4))]
    score, fake, _ = record(script, tempo=120, stop_after_silence=2)
    assert score.notes == (Note(24, C4, 24), Note(72, D4, 24))
    assert fake.t == pytest.approx(4.0)


def test_silence_waits_for_held_keys():
    script = [(0.5, on(C4)), (3.0, off(C4))]
    score, fake, _ = record(script, tempo=120, stop_after_silence=1)
    assert score.notes == (Note(24, C4, 120),)
    assert fake.t == pytest.approx(4.0)


def test_stop_event_ends_the_recording():
    stop = threading.Event()
    score, fake, _ = record([(0.5, on(C4)), (1.0, stop.set)], tempo=120, stop=stop)
    assert score.notes == (Note(24, C4, 24),)
    assert fake.t == pytest.approx(1.0)


def test_keyboard_interrupt_returns_what_was_recorded():
    score, _, _ = record([(0.0, on(C4)), (0.5, off(C4)), (0.5, on(E4)), (1.25, "interrupt")], tempo=120)
    assert score == melody(notes=(Note(0, C4, 24), Note(24, E4, 36)))
    assert loopback._inputs == []


def test_interrupt_during_countdown_gives_an_empty_score():
    score, _, _ = record([(1.0, on(C4)), (2.0, "interrupt")], tempo=120, countdown=True)
    assert score == melody()
    assert score.notes == () and score.end == 0


def test_polling_fallback_for_backends_without_callbacks():
    class NoCallbacks:
        get_input_names = staticmethod(loopback.get_input_names)

        @staticmethod
        def open_input(name=None, callback=None, **kwargs):
            if callback is not None:
                raise NotImplementedError("callbacks are not supported")
            return loopback.open_input(name, **kwargs)

    # Polled messages are stamped when seen: events on the 0.25 s poll grid stay exact.
    script = [(0.5, on(C4)), (1.0, off(C4)), (1.0, on(D4)), (2.0, off(D4))]
    score, _, _ = record(script, backend=NoCallbacks(), tempo=120, seconds=3, poll_seconds=0.25)
    assert score.notes == (Note(24, C4, 24), Note(48, D4, 48))


def test_backend_given_by_name_goes_through_mido_backend():
    script = [(0.5, on(C4)), (1.0, off(C4))]
    score, _, _ = record(script, backend="midi_loopback", tempo=120, seconds=1)
    assert score.notes == (Note(24, C4, 24),)
    assert list_midi_ports("midi_loopback") == ["loop"]
    assert list_midi_ports(mido.Backend("midi_loopback")) == ["loop"]


def test_port_choice_by_name_part_and_index():
    loopback.set_port_names(["Digital Piano MIDI 1", "DeepComposer MIDI 1"])
    assert midi_status(loopback) == "2 MIDI input ports: Digital Piano MIDI 1, DeepComposer MIDI 1"
    script = [(0.5, on(C4)), (1.0, off(C4))]
    for port in ("deepcomposer", "DeepComposer MIDI 1", 1, -1):
        score, _, _ = record(script, port=port, port_name="DeepComposer MIDI 1", tempo=120, seconds=1)
        assert score.notes == (Note(24, C4, 24),), port
    score, _, _ = record(script, port_name="DeepComposer MIDI 1", tempo=120, seconds=1)
    assert score.notes == ()  # port=None takes the first port, which heard nothing
    with pytest.raises(CapsuleError, match="'organ' matches no input port"):
        record_midi("organ", backend=loopback, countdown=False, seconds=1)
    with pytest.raises(CapsuleError, match="'midi' matches several input port"):
        record_midi("midi", backend=loopback, countdown=False, seconds=1)
    with pytest.raises(CapsuleError, match="MIDI port 2 does not exist"):
        record_midi(2, backend=loopback, countdown=False, seconds=1)


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("tempo", [39, 39.9, 160.5, 161, 300, float("nan"), "fast"])
def test_tempo_out_of_range_is_refused(tempo):
    with pytest.raises(CapsuleError, match="tempo"):
        record_midi(tempo=tempo, backend=loopback)
    with pytest.raises(CapsuleError, match="tempo"):
        MidiRecorder(tempo)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seconds": 0}, "seconds must be positive"),
        ({"stop_after_silence": -1}, "stop_after_silence must be positive"),
        ({"countdown": -2}, "countdown -2 seconds is negative"),
        ({"resolution": 0}, "resolution 0"),
        ({"program": 128}, "program 128"),
        ({"quantize": 0}, "quantize grid 0"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(CapsuleError, match=match):
        record_midi(backend=loopback, **kwargs)


def test_no_ports_gives_a_friendly_error():
    loopback.set_port_names([])
    assert list_midi_ports(loopback) == []
    assert midi_status(loopback) == "no MIDI ports (none connected)"
    with pytest.raises(CapsuleError, match="^no MIDI ports: none connected"):
        record_midi(backend=loopback)


def _rtmidi_system_error():
    import rtmidi

    return rtmidi.SystemError


@pytest.mark.parametrize("error", [SystemError, "rtmidi", OSError, RuntimeError, ImportError])
def test_no_midi_system_gives_empty_list_and_friendly_error(monkeypatch, error):
    error = _rtmidi_system_error() if error == "rtmidi" else error

    def broken(**kwargs):
        raise error("MidiInAlsa::initialize: error creating ALSA sequencer client object.")

    monkeypatch.setattr(mido, "get_input_names", broken)
    assert list_midi_ports() == []
    assert midi_status() == (
        "no MIDI ports (no MIDI system found: MidiInAlsa::initialize: error creating ALSA sequencer client object.)"
    )
    with pytest.raises(CapsuleError, match="^no MIDI ports: no MIDI system found: MidiInAlsa"):
        record_midi(countdown=False, seconds=1)


def test_real_default_backend_on_this_machine(monkeypatch):
    monkeypatch.delenv("MIDO_BACKEND", raising=False)
    if list_midi_ports():
        pytest.skip("this machine has real MIDI input ports")
    assert midi_status().startswith("no MIDI ports (")
    with pytest.raises(CapsuleError, match="^no MIDI ports: "):
        record_midi(countdown=False, seconds=1)


# -- the pure core ---------------------------------------------------------------------
def test_recorder_core_directly():
    rec = MidiRecorder(120, start_time=10.0, program=3)
    rec.feed(on(C4), 9.0)  # before the start
    rec.feed(off(C4), 10.1)
    rec.feed(mido.Message("program_change", program=40), 10.2)  # ignored
    rec.feed(mido.Message("pitchwheel", pitch=1000), 10.2)  # ignored
    rec.feed(mido.Message("clock"), 10.3)  # ignored
    rec.feed(on(D4, 99), 10.5)
    rec.feed(on(E4, 98), 10.75)
    assert rec.held == 2 and rec.n_notes == 2
    preview = rec.score(11.0)
    assert preview == Score(
        tracks=(Track(name="melody", program=3, notes=(Note(24, D4, 24, 99), Note(36, E4, 12, 98))),)
    )
    assert rec.score(11.0) == preview  # score() changes nothing
    rec.feed(mido.Message("control_change", control=123, value=0), 11.25)  # all notes off
    assert rec.held == 0
    rec.feed(on(G4), 11.5)
    rec.stop(12.0)
    rec.feed(on(A4), 12.5)  # after the stop
    assert rec.score().notes == (Note(24, D4, 36, 99), Note(36, E4, 24, 98), Note(72, G4, 24))


def test_recorder_step_rounding():
    rec = MidiRecorder(100, resolution=24, start_time=2.0)
    # 100 bpm: 0.6 s a beat, 0.025 s a step; halves round up.
    assert [rec.step(t) for t in (2.0, 2.6, 2.0125, 2.0124, 1.4)] == [0, 24, 1, 0, -24]


def test_recorder_with_nothing_played():
    assert MidiRecorder(90).score() == Score(tracks=(Track(name="melody"),), tempo=90)
