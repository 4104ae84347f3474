"""Audio rendering: both backends for real (FluidSynth needs the system package libfluidsynth3)."""

from __future__ import annotations

import sys
import threading
import warnings
import wave

import numpy as np
import pytest

from capsule_lib import CapsuleError, Note, Score, Track, audio
from capsule_lib.audio import (
    TAIL_SECONDS,
    audio_backend,
    metronome_track,
    mp3_bytes,
    play,
    render_audio,
    synthesize,
    wav_bytes,
)

SR = 22050  # half CD rate keeps the tests quick; FluidSynth caches a synth per rate
RES = 4  # steps per beat: at 120 bpm one step is 0.125 s


@pytest.fixture(params=["fluidsynth", "builtin"])
def backend(request, monkeypatch):
    """Run a test once per backend; the FluidSynth run fails (not skips) if the library is missing."""
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", request.param)
    assert audio_backend() == request.param
    return request.param


@pytest.fixture
def fluid(monkeypatch):
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "fluidsynth")
    assert audio_backend() == "fluidsynth"


@pytest.fixture
def builtin(monkeypatch):
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "builtin")


def melody(notes, **kw) -> Score:
    return Score.from_notes(notes, resolution=RES, **kw)


def rms(x: np.ndarray, t0: float, t1: float, rate: int = SR) -> float:
    window = x[int(t0 * rate) : int(t1 * rate)]
    return float(np.sqrt(np.mean(window.astype(np.float64) ** 2)))


def spectrum(x: np.ndarray, t0: float, t1: float, rate: int = SR) -> tuple[np.ndarray, np.ndarray]:
    mono = x[int(t0 * rate) : int(t1 * rate)].mean(axis=1)
    mags = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return np.fft.rfftfreq(len(mono), 1 / rate), mags


def dominant_frequency(x: np.ndarray, t0: float, t1: float) -> float:
    freqs, mags = spectrum(x, t0, t1)
    return float(freqs[np.argmax(mags)])


def spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """L1 distance between magnitude spectra normalised to unit sum (0 same, 2 disjoint)."""
    a, b = a / a.sum(), b / b.sum()
    return float(np.abs(a - b).sum())


# -- shape, length, levels ---------------------------------------------------------------
def test_length_matches_duration_plus_tail(backend):
    score = melody([(0, 60, 4), (4, 64, 4), (8, 67, 12)])  # 20 steps = 2.5 s at 120 bpm
    out = synthesize(score, SR)
    assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == 2
    assert len(out) == round((2.5 + TAIL_SECONDS) * SR)
    assert np.all(np.abs(out) <= 1.0)


def test_sound_where_notes_are_and_silence_in_rests(backend):
    # notes at 0-1 s and 3-4 s, a two-second rest between
    out = synthesize(melody([(0, 60, 8), (24, 64, 8)]), SR)
    first, second = rms(out, 0.05, 0.9), rms(out, 3.05, 3.9)
    rest = rms(out, 2.0, 2.95)  # a second after the note-off: releases and reverb have died
    assert first > 0.05 and second > 0.05
    assert rest < 0.02 * min(first, second)


def test_empty_score_renders_short_silence(backend):
    out = synthesize(Score(), SR)
    assert out.shape == (round(TAIL_SECONDS * SR), 2)
    assert not np.any(out)


def test_loud_chords_are_limited_not_clipped(backend):
    chord = [(0, p, 16, 127) for p in range(48, 84, 2)]  # 18 loud notes at once
    out = synthesize(melody(chord), SR)
    peak = float(np.max(np.abs(out)))
    assert peak == pytest.approx(audio.TARGET_PEAK, rel=1e-3)


def test_tempo_change_moves_notes_and_length(backend):
    # a note on beat 6; from beat 4 the tempo halves to 60 bpm: beat 6 lands at 2 + 2 = 4 s (not 3 s)
    score = melody([(6 * RES, 62, RES)]).replace(tempo_changes=((4 * RES, 60.0),))
    slow = synthesize(score, SR)
    assert len(slow) == round((2.0 + 3.0 + TAIL_SECONDS) * SR)  # ends on beat 7 = 5 s
    assert rms(slow, 3.0, 3.9) < 1e-3  # where 120 bpm would have put it
    assert rms(slow, 4.05, 4.6) > 0.05
    fast = synthesize(melody([(6 * RES, 62, RES)]).replace(tempo_changes=((4 * RES, 240.0),)), SR)
    assert len(fast) == round((2.0 + 0.75 + TAIL_SECONDS) * SR)  # beats 4-7 at 240 bpm take 0.75 s
    assert rms(fast, 2.5, 2.7) > 0.05


def test_sustain_pedal_holds_notes(backend):
    note = (Note(0, 60, 4, 100),)  # released at 0.5 s
    dry = synthesize(Score(tracks=(Track("p", notes=note),), resolution=RES), SR)
    held = synthesize(Score(tracks=(Track("p", notes=note, pedals=((0, 16),)),), resolution=RES), SR)
    assert len(dry) == round((0.5 + TAIL_SECONDS) * SR)
    assert len(held) == round((2.0 + TAIL_SECONDS) * SR)  # the render covers the pedal's hold
    assert rms(held, 1.0, 1.4) > 10 * rms(dry, 1.0, 1.4)


def test_drum_track_is_heard(backend):
    drums = Score(
        tracks=(Track("drums", is_drum=True, notes=(Note(0, 36, 2), Note(4, 38, 2), Note(8, 42, 2))),), resolution=RES
    )
    out = synthesize(drums, SR)
    assert rms(out, 0.0, 0.1) > 0.02 and rms(out, 0.5, 0.6) > 0.02


# -- pitch and timbre ----------------------------------------------------------------------------
@pytest.mark.parametrize("program", [0, 33, 48, 73, 80])
def test_builtin_higher_note_has_higher_dominant_frequency(builtin, program):
    low = synthesize(melody([(0, 57, 8)], program=program), SR)  # A3 = 220 Hz
    high = synthesize(melody([(0, 69, 8)], program=program), SR)  # A4 = 440 Hz
    f_low, f_high = dominant_frequency(low, 0.1, 0.9), dominant_frequency(high, 0.1, 0.9)
    assert f_high > f_low
    assert f_low == pytest.approx(220.0, rel=0.03)
    assert f_high == pytest.approx(440.0, rel=0.03)


def test_fluidsynth_program_changes_timbre(fluid):
    def spec(program):
        return spectrum(synthesize(melody([(0, 60, 8)], program=program), SR), 0.05, 0.9)[1]

    piano, piano_again, flute, trumpet = spec(0), spec(0), spec(73), spec(56)
    same = spectral_distance(piano, piano_again)
    assert spectral_distance(piano, flute) > 0.3 > 5 * same
    assert spectral_distance(piano, trumpet) > 0.3


def test_fluidsynth_drums_use_the_percussion_bank(fluid):
    note = (Note(0, 38, 4, 110),)  # 38 = acoustic snare on a drum channel, a low D on a piano
    as_drum = synthesize(Score(tracks=(Track("d", is_drum=True, notes=note),), resolution=RES), SR)
    as_piano = synthesize(Score(tracks=(Track("p", notes=note),), resolution=RES), SR)
    assert spectral_distance(spectrum(as_drum, 0, 0.3)[1], spectrum(as_piano, 0, 0.3)[1]) > 0.3


def test_fluidsynth_renders_are_independent(fluid):
    busy = melody([(s, 40 + s % 40, 64, 127) for s in range(0, 32)], program=48)  # long loud strings
    late = melody([(16, 72, 4)])  # one note at 2 s
    first = synthesize(late, SR)
    synthesize(busy, SR)
    after_busy = synthesize(late, SR)
    # nothing of the busy render leaks into the next one: the first 2 s stay silent
    assert np.max(np.abs(after_busy[: int(1.95 * SR)])) < 1e-3
    assert np.max(np.abs(after_busy - first)) < 0.05  # only reverb modulation phase may differ


def test_fluidsynth_threads_share_the_synth_safely(fluid):
    scores = [melody([(0, 60 + 7 * i, 8), (8, 62 + 7 * i, 8)], program=8 * i) for i in range(3)]
    expected = [synthesize(s, SR) for s in scores]
    results = [None] * len(scores)

    def work(i):
        results[i] = synthesize(scores[i], SR)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(scores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert np.max(np.abs(got - want)) < 0.05


# -- metronome -------------------------------------------------------------------------------
def test_metronome_track_clicks_every_beat():
    track = metronome_track(2)
    assert track.is_drum and track.name == "metronome"
    res = 24  # DEFAULT_RESOLUTION for a bar count
    assert [n.start for n in track.notes] == [k * res for k in range(8)]
    assert [n.pitch for n in track.notes] == [76, 77, 77, 77] * 2
    assert track.notes[0].velocity > track.notes[1].velocity
    assert {n.pitch for n in metronome_track(2, accent=False).notes} == {77}


def test_metronome_follows_time_signature_and_resolution():
    waltz = Score.from_notes([(0, 60, 3 * 4 * 3)], resolution=4, time_signature=(3, 4))  # 3 bars of 3/4
    track = metronome_track(waltz)
    assert [n.start for n in track.notes] == list(range(0, 36, 4))
    assert [n.pitch for n in track.notes][:4] == [76, 77, 77, 76]
    jig = Score.from_notes([(0, 60, 24)], resolution=4, time_signature=(6, 8))  # 2 bars of 6/8
    starts = [n.start for n in metronome_track(jig).notes]
    assert starts == list(range(0, 24, 2))  # a quaver beat is 2 steps at 4 steps per quarter
    assert metronome_track(0).notes == ()
    with pytest.raises(CapsuleError):
        metronome_track(-1)


def test_metronome_adds_clicks_at_beat_times(backend):
    # two bars at 120 bpm with one barely audible note at the very end: beats every 0.5 s
    score = melody([(2 * 4 * RES - 1, 60, 1, 1)])
    plain = synthesize(score, SR)
    clicked = synthesize(score, SR, metronome=True)
    assert len(clicked) == len(plain)
    for beat in range(8):
        t = beat * 0.5
        onset, between = rms(clicked, t, t + 0.04), rms(clicked, t + 0.3, t + 0.45)
        assert onset > 0.02, f"no click at beat {beat}"
        assert onset > 5 * between, f"click at beat {beat} does not stand out"
        assert rms(plain, t, t + 0.04) < 0.2 * onset


# -- files and encodings -------------------------------------------------------------------------
def test_wav_file_parses_back(builtin, tmp_path):
    score = melody([(0, 60, 4), (4, 67, 4)])
    path = render_audio(score, tmp_path / "song.wav", SR)
    assert path == tmp_path / "song.wav"
    expected = synthesize(score, SR)
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SR, 2, 2)
        assert w.getnframes() == len(expected)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert np.max(np.abs(pcm / 32767.0 - expected)) < 1.0 / 32767 + 1e-6
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary behind


def test_wav_bytes_mono_and_bad_input():
    mono = np.sin(np.linspace(0, 100, 1000)).astype(np.float32)
    with wave.open(__import__("io").BytesIO(wav_bytes(mono, 8000)), "rb") as w:
        assert (w.getnchannels(), w.getnframes(), w.getframerate()) == (1, 1000, 8000)
    with pytest.raises(CapsuleError):
        wav_bytes(np.zeros((10, 3)), 8000)
    with pytest.raises(CapsuleError):
        wav_bytes(np.array([0.0, np.nan]), 8000)


MP3_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]  # MPEG-1 layer III


def first_mp3_frame(data: bytes) -> int:
    """Offset of the first MPEG frame header, after an ID3v2 tag if there is one."""
    offset = 0
    if data[:3] == b"ID3":
        size = int.from_bytes(data[6:10], "big")
        offset = 10 + ((size >> 24 & 0x7F) << 21 | (size >> 16 & 0x7F) << 14 | (size >> 8 & 0x7F) << 7 | size & 0x7F)
    return offset


def test_mp3_file_has_mpeg_frames_of_the_right_format(builtin, tmp_path):
    score = melody([(i * 2, 60 + i, 2) for i in range(16)])  # 4 s of music, 5 s with the tail
    path = render_audio(score, tmp_path / "song.MP3", 44100)
    data = path.read_bytes()
    at = first_mp3_frame(data)
    header = data[at : at + 4]
    assert header[0] == 0xFF and header[1] & 0xE0 == 0xE0  # frame sync
    assert (header[1] >> 3) & 3 == 3 and (header[1] >> 1) & 3 == 1  # MPEG-1, layer III
    assert MP3_BITRATES[header[2] >> 4] == 192
    assert (header[2] >> 2) & 3 == 0  # 44100 Hz
    assert header[3] >> 6 != 3  # not mono
    expected = 192_000 / 8 * (4.0 + TAIL_SECONDS)
    assert 0.85 * expected < len(data) < 1.2 * expected


def test_mp3_bytes_rejects_rates_and_bitrates_it_cannot_store():
    silence = np.zeros((1000, 2), np.float32)
    assert len(mp3_bytes(silence, 22050, bitrate=64)) > 0
    with pytest.raises(CapsuleError, match="MP3"):
        mp3_bytes(silence, 96000)
    with pytest.raises(CapsuleError, match="bitrate"):
        mp3_bytes(silence, 44100, bitrate=100)


def test_bad_suffix_raises_and_writes_nothing(builtin, tmp_path):
    with pytest.raises(CapsuleError, match=r"\.ogg"):
        render_audio(melody([(0, 60, 4)]), tmp_path / "song.ogg")
    with pytest.raises(CapsuleError):
        render_audio(melody([(0, 60, 4)]), tmp_path / "song")
    assert list(tmp_path.iterdir()) == []


def test_bad_sample_rate_and_input_raise(builtin):
    with pytest.raises(CapsuleError, match="sample rate"):
        synthesize(melody([(0, 60, 4)]), 1000)
    with pytest.raises(CapsuleError):
        synthesize("not a score", SR)


def test_play_returns_a_notebook_audio_player_with_compact_mono_mp3(builtin):
    player = play(melody([(0, 60, 4)]))
    from IPython.display import Audio

    assert isinstance(player, Audio)
    html = player._repr_html_()
    assert "<audio" in html and 'type="audio/mpeg"' in html
    assert player.data[:3] == b"ID3" or (player.data[0] == 0xFF and player.data[1] & 0xE0 == 0xE0)


def test_a_30_second_player_embeds_well_under_a_megabyte(builtin):
    # 30 s at 120 bpm: 60 beats of four-note chords (the densest texture the studio makes)
    notes = [(beat * 4, pitch, 4) for beat in range(60) for pitch in (48, 55, 64, 72)]
    score = melody(notes)
    assert 29 < score.duration_seconds <= 31
    data = play(score).data
    assert len(data) < 300_000  # 64 kbit/s mono: 240 kB, where 44.1 kHz stereo WAV would be 5.3 MB
    seconds = len(data) * 8 / 64_000
    assert seconds == pytest.approx(score.duration_seconds, abs=2.5)  # the whole piece is in it


# -- backend choice and the fallback --------------------------------------------------------
def test_missing_fluidsynth_falls_back_and_warns_once(monkeypatch):
    monkeypatch.delenv("CAPSULE_AUDIO_BACKEND", raising=False)
    monkeypatch.setattr(audio, "_STATE", audio._BackendState())  # forget what this process learned
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # makes `import fluidsynth` raise ImportError
    score = melody([(0, 60, 4)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = synthesize(score, SR)
        second = synthesize(score, SR)
        assert audio_backend() == "builtin"
    fallback = [w for w in caught if "libfluidsynth3" in str(w.message)]
    assert len(fallback) == 1
    assert rms(first, 0.05, 0.45) > 0.05
    np.testing.assert_array_equal(first, second)


def test_forcing_missing_fluidsynth_is_an_error(monkeypatch):
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "fluidsynth")
    monkeypatch.setattr(audio, "_STATE", audio._BackendState())
    monkeypatch.setitem(sys.modules, "fluidsynth", None)
    with pytest.raises(CapsuleError, match="libfluidsynth3"):
        synthesize(melody([(0, 60, 4)]), SR)


def test_forced_builtin_does_not_warn_and_bad_choice_raises(monkeypatch):
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "builtin")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert audio_backend() == "builtin"
        synthesize(melody([(0, 60, 4)]), SR)
    monkeypatch.setenv("CAPSULE_AUDIO_BACKEND", "timidity")
    with pytest.raises(CapsuleError, match="timidity"):
        audio_backend()
