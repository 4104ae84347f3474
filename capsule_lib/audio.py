"""Render scores to audio: FluidSynth with a General MIDI SoundFont, or a small numpy synth.

:func:`synthesize` turns a :class:`~capsule_lib.score.Score` into stereo float
samples; :func:`render_audio` writes them as WAV or MP3 and :func:`play` wraps
them for a notebook.  The preferred backend drives one cached FluidSynth
synthesizer with the ``TimGM6mb.sf2`` SoundFont that ``pretty_midi`` ships.
Where the FluidSynth C library is missing (Debian/Ubuntu package
``libfluidsynth3``) a built-in additive synthesizer stands in, so notebooks
still make sound; set ``CAPSULE_AUDIO_BACKEND=builtin`` to choose it on purpose
or ``CAPSULE_AUDIO_BACKEND=fluidsynth`` to make its absence an error.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import os
import threading
import warnings
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes
from .errors import CapsuleError
from .score import DEFAULT_RESOLUTION, Note, Score, Track

__all__ = [
    "synthesize",
    "render_audio",
    "wav_bytes",
    "mp3_bytes",
    "play",
    "metronome_track",
    "audio_backend",
    "TAIL_SECONDS",
]

#: Seconds rendered after the last note ends, so releases and reverb ring out.
TAIL_SECONDS = 1.0
#: Peak level the mix is scaled to (about -0.9 dBFS): loud, never clipping.
TARGET_PEAK = 0.9
# Below this peak a render counts as silence and is left alone, so quiet
# dither or an empty score is never blown up into audible noise.
_SILENCE_PEAK = 1e-4
_MIN_RATE, _MAX_RATE = 8000, 96000  # FluidSynth's own sample-rate limits
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_DRUM_CHANNEL = 9
_ENV_BACKEND = "CAPSULE_AUDIO_BACKEND"
_ENV_SOUNDFONT = "CAPSULE_SOUNDFONT"
_SOUNDFONT_NAME = "TimGM6mb.sf2"

# GM percussion used by the metronome: accent on the downbeat, plain click elsewhere.
_HI_WOOD_BLOCK, _LOW_WOOD_BLOCK = 76, 77

# One lock guards the probe, the synth cache and every render: a FluidSynth
# synth is stateful, so two threads rendering on it at once would mix notes.
_LOCK = threading.RLock()


class _CachedSynth:
    """A FluidSynth synth with its SoundFont id and how many frames it has made.

    FluidSynth renders in blocks of 64 frames and keeps the unread rest of a
    block for the next call; counting frames lets each render start on a block
    boundary, so a render's event timing never depends on what came before.
    """

    BLOCK = 64

    def __init__(self, synth, sfid: int):
        self.synth, self.sfid, self.frames = synth, sfid, 0


class _BackendState:
    """What this process knows about FluidSynth; tests swap it for a fresh one."""

    def __init__(self):
        self.probed = False
        self.module = None  # the imported ``fluidsynth`` module, if usable
        self.soundfont: str | None = None
        self.problem = ""  # why FluidSynth is unusable, for the warning
        self.warned = False
        self.synths: dict[int, _CachedSynth] = {}  # sample rate -> synth
        self.write_float = None


_STATE = _BackendState()


# -- backend selection --------------------------------------------------------
def _soundfont_path() -> str | None:
    """The General MIDI SoundFont: ``$CAPSULE_SOUNDFONT`` or the one in pretty_midi's package."""
    override = os.environ.get(_ENV_SOUNDFONT)
    if override:
        return override if os.path.isfile(override) else None
    # find_spec locates the package without importing it (pretty_midi pulls in mido etc.).
    spec = importlib.util.find_spec("pretty_midi")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(folder, _SOUNDFONT_NAME)
        if os.path.isfile(candidate):
            return candidate
    return None


def _probe() -> _BackendState:
    state = _STATE
    with _LOCK:
        if state.probed:
            return state
        state.probed = True
        try:
            # pyfluidsynth prints where it found the library when $CI is set: keep that off stdout
            # (it would break `capsule doctor --json` and a notebook's clean output).
            with contextlib.redirect_stdout(io.StringIO()):
                import fluidsynth  # noqa: PLC0415 - loads a C library, so only on demand
        except (ImportError, OSError) as exc:
            state.problem = f"the FluidSynth library could not be loaded ({exc})"
            return state
        soundfont = _soundfont_path()
        if soundfont is None:
            state.problem = f"the General MIDI SoundFont {_SOUNDFONT_NAME} was not found"
            return state
        state.module, state.soundfont = fluidsynth, soundfont
        raw = getattr(getattr(fluidsynth, "_fl", None), "fluid_synth_write_float", None)
        if raw is not None:
            # Float output skips FluidSynth's 16-bit dither and clipping: we normalise ourselves.
            raw.argtypes = [
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_int,
            ]
            raw.restype = ctypes.c_int
            state.write_float = raw
        return state


def audio_backend() -> str:
    """Name the backend :func:`synthesize` will use: ``"fluidsynth"`` or ``"builtin"``.

    ``$CAPSULE_AUDIO_BACKEND`` may be ``builtin`` (always use the numpy synth),
    ``fluidsynth`` (require FluidSynth; its absence raises :class:`CapsuleError`)
    or ``auto``/unset (FluidSynth when it loads, else builtin with one warning).
    """
    choice = os.environ.get(_ENV_BACKEND, "auto").strip().lower() or "auto"
    if choice not in ("auto", "builtin", "fluidsynth"):
        raise CapsuleError(f"{_ENV_BACKEND}={choice!r} is not one of auto, builtin, fluidsynth")
    if choice == "builtin":
        return "builtin"
    state = _probe()
    if state.module is not None:
        return "fluidsynth"
    if choice == "fluidsynth":
        raise CapsuleError(
            f"FluidSynth is required by {_ENV_BACKEND} but {state.problem}; install the system package libfluidsynth3"
        )
    with _LOCK:
        if not state.warned:
            state.warned = True
            warnings.warn(
                f"Rendering audio with the simple built-in synthesizer because {state.problem}. "
                "Install the system package libfluidsynth3 (apt-get install libfluidsynth3) "
                "for realistic General MIDI instruments.",
                RuntimeWarning,
                stacklevel=3,
            )
    return "builtin"


# -- metronome ---------------------------------------------------------------
def metronome_track(score_or_n_bars: Score | int, *, accent: bool = True) -> Track:
    """A drum track of wood-block clicks on every beat.

    Parameters
    ----------
    score_or_n_bars : Score or int
        A score (clicks cover its bars, at its resolution and time signature) or
        a bar count (4/4 at :data:`~capsule_lib.score.DEFAULT_RESOLUTION`).
    accent : bool
        Mark each bar's downbeat with GM note 76 (Hi Wood Block); other beats
        use 77 (Low Wood Block).  With ``False`` every beat is 77.

    Returns
    -------
    Track
        ``is_drum=True``, named ``"metronome"``.  The beat is the time
        signature's denominator (a quaver in 6/8), so 6/8 clicks six times a bar.
    """
    if isinstance(score_or_n_bars, Score):
        score = score_or_n_bars
        n_bars = score.n_bars
    else:
        if isinstance(score_or_n_bars, bool) or not isinstance(score_or_n_bars, (int, np.integer)):
            raise CapsuleError(f"metronome needs a Score or a bar count, not {type(score_or_n_bars).__name__}")
        n_bars = int(score_or_n_bars)
        if n_bars < 0:
            raise CapsuleError(f"metronome bar count {n_bars} is negative")
        score = Score(resolution=DEFAULT_RESOLUTION)
    num, den = score.time_signature
    beat = Fraction(4 * score.resolution, den)  # steps per beat of the signature's unit
    click = max(1, int(beat / 2))
    notes = []
    for bar in range(n_bars):
        origin = bar * score.steps_per_bar
        for k in range(num):
            start = origin + int(round(k * beat))
            downbeat = accent and k == 0
            notes.append(Note(start, _HI_WOOD_BLOCK if downbeat else _LOW_WOOD_BLOCK, click, 120 if downbeat else 90))
    return Track(name="metronome", program=0, is_drum=True, notes=tuple(notes))


# -- rendering -----------------------------------------------------------------
def _check_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise CapsuleError(f"sample rate {sample_rate!r} must be a whole number of Hz")
    if not _MIN_RATE <= sample_rate <= _MAX_RATE:
        raise CapsuleError(f"sample rate {sample_rate} Hz is outside {_MIN_RATE}-{_MAX_RATE}")
    return int(sample_rate)


def _seconds_of(score: Score):
    """A memoised step -> seconds map; scores reuse few distinct steps."""
    cache: dict[int, float] = {}
    at = score.tempo_map()

    def seconds(step: int) -> float:
        value = cache.get(step)
        if value is None:
            value = cache[step] = at(step)
        return value

    return seconds


def _untangled(notes: tuple[Note, ...]) -> list[tuple[int, int, int, int]]:
    """(start, end, pitch, velocity) with same-pitch overlaps cut at the later onset.

    A synth keys note-offs by pitch, so an overlapping repeat would otherwise be
    silenced early by its predecessor's note-off.
    """
    out = []
    last: dict[int, int] = {}  # pitch -> index in out of its latest note
    for n in notes:  # sorted by start
        i = last.get(n.pitch)
        if i is not None and out[i][1] > n.start:
            s, _, p, v = out[i]
            out[i] = (s, n.start, p, v)  # a duplicate onset leaves (s, s), dropped below
        last[n.pitch] = len(out)
        out.append((n.start, n.end, n.pitch, n.velocity))
    return [x for x in out if x[1] > x[0]]


def synthesize(score: Score, sample_rate: int = 44100, *, metronome: bool = False) -> np.ndarray:
    """Render ``score`` to stereo samples.

    Parameters
    ----------
    score : Score
        The music; tempo changes are honoured and drum tracks use GM percussion.
    sample_rate : int
        Samples per second, 8000-96000.
    metronome : bool
        Mix in :func:`metronome_track` clicks on every beat.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(n, 2)``, values within [-1, 1]; ``n`` covers the score
        (with notes the sustain pedal holds) plus :data:`TAIL_SECONDS` of release.  Non-silent renders are scaled to a
        peak of :data:`TARGET_PEAK`; an empty score gives the tail's silence.
    """
    if not isinstance(score, Score):
        raise CapsuleError(f"synthesize needs a Score, not {type(score).__name__}")
    rate = _check_rate(sample_rate)
    if metronome:
        score = score.replace(tracks=(*score.tracks, metronome_track(score)))
    # Notes the sustain pedal holds on ring past Score.end; the render must cover them.
    end = max((n.end for t in score.tracks for n in _pedalled(t)), default=0)
    n_frames = int(round((score.step_to_seconds(end) + TAIL_SECONDS) * rate))
    if not any(t.notes for t in score.tracks):
        return np.zeros((n_frames, 2), np.float32)
    if audio_backend() == "fluidsynth":
        out = _render_fluidsynth(score, rate, n_frames)
    else:
        out = _render_builtin(score, rate, n_frames)
    return _normalise(out)


def _normalise(samples: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > _SILENCE_PEAK:
        samples *= np.float32(TARGET_PEAK / peak)
    return np.clip(samples, -1.0, 1.0, out=samples).astype(np.float32, copy=False)


# -- FluidSynth backend --------------------------------------------------------
def _synth_for(rate: int) -> _CachedSynth:
    state = _probe()
    cached = state.synths.get(rate)
    if cached is None:
        # FluidSynth can spread voices over threads; a few cores halve a render of dense strings.
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        settings = {
            "synth.cpu-cores": max(1, min(4, usable)),
            "synth.polyphony": 512,  # dense accompaniments exceed the default 256 voices
        }
        synth = state.module.Synth(gain=0.5, samplerate=float(rate), **settings)
        sfid = synth.sfload(state.soundfont)
        if sfid < 0:
            synth.delete()
            raise CapsuleError(f"FluidSynth could not load the SoundFont {state.soundfont}")
        cached = state.synths[rate] = _CachedSynth(synth, sfid)
    return cached


def _channels(tracks) -> list[int]:
    """One MIDI channel per melodic track (skipping every drum channel); drums share 9."""
    out, free = [], (c for c in range(256) if c % 16 != _DRUM_CHANNEL)
    for t in tracks:
        if t.is_drum:
            out.append(_DRUM_CHANNEL)
        else:
            channel = next(free, None)
            if channel is None:
                raise CapsuleError(f"the score has {len(tracks)} tracks; at most 240 melodic tracks can be rendered")
            out.append(channel)
    return out


def _render_fluidsynth(score: Score, rate: int, n_frames: int) -> np.ndarray:
    seconds = _seconds_of(score)
    channels = _channels(score.tracks)
    # Events sort by (frame, kind): note-offs and pedal-ups before note-ons at one instant.
    events: list[tuple[int, int, int, int, int]] = []

    def frame(step: int) -> int:
        return min(n_frames, int(round(seconds(step) * rate)))

    for track, chan in zip(score.tracks, channels):
        for start, end, pitch, velocity in _untangled(track.notes):
            events.append((frame(start), 2, chan, pitch, velocity))
            events.append((frame(end), 0, chan, pitch, 0))
        if not track.is_drum:
            for down, up in track.pedals:
                events.append((frame(down), 1, chan, 64, 127))
                events.append((frame(up), 0, chan, -64, 0))
    events.sort()

    out = np.zeros((n_frames, 2), np.float32)
    with _LOCK:
        cached = _synth_for(rate)
        synth, sfid = cached.synth, cached.sfid
        # A full reset makes renders independent: no voices, pedals or programs left over...
        synth.system_reset()
        _drain(cached)  # ...and no reverb tail, which the reset keeps
        for track, chan in zip(score.tracks, channels):
            if track.is_drum:
                synth.program_select(chan, sfid, 128, 0)
            else:
                synth.program_select(chan, sfid, 0, track.program)
        pos = 0
        for at, kind, chan, key, velocity in events:
            if at > pos:
                _pull(cached, out, pos, at)
                pos = at
            if kind == 2:
                synth.noteon(chan, key, velocity)
            elif key == -64:
                synth.cc(chan, 64, 0)
            elif kind == 1:
                synth.cc(chan, 64, velocity)
            else:
                synth.noteoff(chan, key)
        _pull(cached, out, pos, n_frames)
        # Cut ringing voices now, so the next render's drain waits only for the reverb.
        for chan in set(channels):
            synth.all_sounds_off(chan)
    return out


def _drain(cached: _CachedSynth, limit_seconds: float = 10.0) -> None:
    """Render and drop audio until the synth is silent, ending on a block boundary.

    After a reset no voice sounds, but the reverb still rings with the last
    render and FluidSynth holds the unread rest of its current block; both
    would leak into the start of the next render.
    """
    rate = int(cached.synth.get_setting("synth.sample-rate") or 44100)
    scratch = np.zeros((16 * cached.BLOCK, 2), np.float32)
    leftover = -cached.frames % cached.BLOCK
    if leftover:
        _pull(cached, scratch, 0, leftover)
    for _ in range(int(limit_seconds * rate) // len(scratch) + 1):
        _pull(cached, scratch, 0, len(scratch))
        if float(np.max(np.abs(scratch))) < 1e-7:
            break


def _pull(cached: _CachedSynth, out: np.ndarray, start: int, stop: int) -> None:
    """Render frames ``start:stop`` of ``out`` from the synth's current state."""
    n = stop - start
    if n <= 0:
        return
    synth = cached.synth
    cached.frames += n
    write_float = _STATE.write_float
    if write_float is not None:
        # Interleaved straight into the output: left at offset 0, right at 1, stride 2.
        address = out.ctypes.data + start * out.strides[0]
        write_float(synth.synth, n, address, 0, 2, address, 1, 2)
    else:
        block = synth.get_samples(n).astype(np.float32) / 32768.0
        out[start:stop] = block.reshape(-1, 2)


# -- built-in backend ---------------------------------------------------------------
# Per GM family (program // 8): (harmonic amplitudes, attack s, decay s,
# sustain level, release s, percussive).  Percussive voices decay while held,
# sustained ones follow ADSR.  The fundamental is always the strongest partial.
_FAMILIES = {
    0: ((1.0, 0.5, 0.3, 0.2, 0.12, 0.08, 0.05), 0.004, 0.0, 0.0, 0.25, True),  # piano
    1: ((1.0, 0.05, 0.3, 0.02, 0.1), 0.002, 0.0, 0.0, 0.4, True),  # chromatic percussion
    2: ((1.0, 0.8, 0.6, 0.3, 0.0, 0.3, 0.0, 0.2), 0.01, 0.05, 0.9, 0.08, False),  # organ
    3: ((1.0, 0.6, 0.4, 0.3, 0.2, 0.1), 0.003, 0.0, 0.0, 0.15, True),  # guitar
    4: ((1.0, 0.4, 0.15, 0.05), 0.005, 0.0, 0.0, 0.12, True),  # bass
    5: ((1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.14, 0.12), 0.08, 0.2, 0.8, 0.3, False),  # strings
    6: ((1.0, 0.45, 0.3, 0.2, 0.15, 0.1), 0.12, 0.3, 0.8, 0.4, False),  # ensemble
    7: ((1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1), 0.03, 0.1, 0.8, 0.12, False),  # brass
    8: ((1.0, 0.1, 0.5, 0.05, 0.3, 0.03, 0.15), 0.03, 0.1, 0.8, 0.1, False),  # reed
    9: ((1.0, 0.15, 0.05), 0.04, 0.1, 0.85, 0.12, False),  # pipe
    10: ((1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14, 0.0, 0.11), 0.005, 0.1, 0.7, 0.08, False),  # synth lead
    11: ((1.0, 0.3, 0.1), 0.3, 0.5, 0.8, 0.6, False),  # synth pad
    12: ((1.0, 0.4, 0.3, 0.2), 0.01, 0.3, 0.5, 0.5, False),  # synth effects
    13: ((1.0, 0.4, 0.25, 0.15, 0.1), 0.003, 0.0, 0.0, 0.2, True),  # ethnic
    14: ((1.0, 0.2, 0.1), 0.001, 0.0, 0.0, 0.1, True),  # percussive
    15: ((1.0, 0.5, 0.5, 0.3), 0.05, 0.2, 0.6, 0.3, False),  # sound effects
}
_TABLE_SIZE = 2048
_MIX_GAIN = 0.25  # per-voice level before normalisation; keeps chords from stacking absurdly


def _wavetable(family: int, n_harmonics: int, cache: dict) -> np.ndarray:
    """One period of the family's waveform, band-limited to ``n_harmonics`` partials."""
    key = (family, n_harmonics)
    table = cache.get(key)
    if table is None:
        amps = _FAMILIES[family][0][: max(1, n_harmonics)]
        phase = np.arange(_TABLE_SIZE) * (2 * np.pi / _TABLE_SIZE)
        table = sum(a * np.sin(k * phase) for k, a in enumerate(amps, start=1) if a)
        table = (table / np.max(np.abs(table))).astype(np.float32)
        cache[key] = table
    return table


def _envelope(family: int, pitch: int, n_on: int, n_release: int, rate: int) -> np.ndarray:
    _, attack, decay, sustain, _, percussive = _FAMILIES[family]
    t = np.arange(n_on, dtype=np.float32) / rate
    if percussive:
        # Higher strings die away faster, as on a piano.
        tau = 1.6 * 2.0 ** (-(pitch - 60) / 24)
        held = np.exp(-t / tau)
    else:
        held = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack, 0) / max(decay, 1e-3))
    n_attack = max(1, int(attack * rate))
    held[:n_attack] *= np.linspace(0.0, 1.0, n_attack, dtype=np.float32)[: len(held)]
    level = held[-1] if n_on else 0.0
    release = level * np.exp(-np.arange(n_release, dtype=np.float32) / (n_release / 5.0))
    return np.concatenate([held, release])


def _drum_sound(pitch: int, rate: int) -> np.ndarray:
    """A one-shot GM percussion sound made from noise bursts and pitched blips."""
    rng = np.random.default_rng(pitch)  # fixed seed: identical scores render identically
    length = {49: 0.9, 57: 0.9, 51: 0.5, 59: 0.5, 46: 0.35, 55: 0.6, 52: 0.8}.get(pitch, 0.25)
    t = np.arange(int(length * rate), dtype=np.float32) / rate
    noise = rng.standard_normal(len(t)).astype(np.float32)
    if pitch in (35, 36):  # kick: a falling sine thump
        freq = 50 + 90 * np.exp(-t / 0.03)
        phase = 2 * np.pi * np.cumsum(freq) / rate
        sound = np.sin(phase) * np.exp(-t / 0.15)
    elif pitch in (38, 40, 37, 39):  # snare, rim, clap: noise over a low tone
        sound = 0.7 * noise * np.exp(-t / 0.07) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
    elif pitch in (42, 44, 46, 49, 51, 52, 53, 55, 57, 59):  # hats and cymbals: bright noise
        bright = np.diff(noise, prepend=0.0)
        tau = {42: 0.03, 44: 0.04, 46: 0.15}.get(pitch, 0.35)
        sound = 0.5 * bright * np.exp(-t / tau)
    elif pitch in (41, 43, 45, 47, 48, 50):  # toms: pitched thumps rising with the note
        freq = 80 * 2.0 ** ((pitch - 41) / 12)
        sound = np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.2)
    elif 75 <= pitch <= 77 or pitch in (31, 33, 34):  # claves, wood blocks, clicks: short high blips
        freq = {76: 1800.0, 75: 2500.0}.get(pitch, 1200.0)
        sound = np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.02) + 0.1 * noise * np.exp(-t / 0.005)
    else:  # everything else: a noise burst coloured by the note number
        freq = 200 * 2.0 ** ((pitch - 60) / 24)
        sound = 0.4 * noise * np.exp(-t / 0.08) + 0.4 * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.1)
    return sound.astype(np.float32)


def _pedalled(track: Track) -> tuple[Note, ...]:
    """Notes held on by the sustain pedal: one released while the pedal is down lasts until it lifts."""
    if not track.pedals or track.is_drum:
        return track.notes
    out = []
    for n in track.notes:
        end = n.end
        for down, up in track.pedals:
            if down <= end < up:
                end = up
        out.append(Note(n.start, n.pitch, end - n.start, n.velocity) if end != n.end else n)
    return tuple(sorted(out))


def _render_builtin(score: Score, rate: int, n_frames: int) -> np.ndarray:
    seconds = _seconds_of(score)
    mono = np.zeros(n_frames, np.float32)
    tables: dict = {}
    drums: dict = {}
    nyquist = rate / 2
    for track in score.tracks:
        family = track.program // 8
        release_s = _FAMILIES[family][4]
        for start, end, pitch, velocity in _untangled(_pedalled(track)):
            first = int(round(seconds(start) * rate))
            if first >= n_frames:
                continue
            loudness = _MIX_GAIN * (velocity / 127.0) ** 1.5
            if track.is_drum:
                sound = drums.get(pitch)
                if sound is None:
                    sound = drums[pitch] = _drum_sound(pitch, rate)
                sound = sound[: n_frames - first]
                mono[first : first + len(sound)] += loudness * sound
                continue
            freq = 440.0 * 2.0 ** ((pitch - 69) / 12)
            n_on = max(1, int(round(seconds(end) * rate)) - first)
            n_total = min(n_on + int(release_s * rate), n_frames - first)
            envelope = _envelope(family, pitch, n_on, int(release_s * rate), rate)[:n_total]
            table = _wavetable(family, int(nyquist // freq), tables)
            # Phase as a table index: cheap enough to render minutes of music in well under a second.
            index = (np.arange(n_total, dtype=np.float64) * (freq * _TABLE_SIZE / rate)).astype(np.int64)
            voice = table[index & (_TABLE_SIZE - 1)]
            mono[first : first + n_total] += loudness * envelope * voice
    return np.repeat(mono[:, None], 2, axis=1)


# -- encoding and files --------------------------------------------------------------
def _as_frames(samples) -> np.ndarray:
    """Validate samples and return them as a (n, channels) float array in [-1, 1]."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] not in (1, 2):
        raise CapsuleError(f"audio samples must have shape (n,), (n, 1) or (n, 2), not {array.shape}")
    if not np.all(np.isfinite(array)):
        raise CapsuleError("audio samples contain NaN or infinite values")
    return np.clip(array, -1.0, 1.0)


def _pcm16(frames: np.ndarray) -> bytes:
    return np.round(frames * 32767.0).astype("<i2").tobytes()


def wav_bytes(samples, sample_rate: int) -> bytes:
    """Encode samples (``(n,)`` mono or ``(n, 2)`` stereo floats in [-1, 1]) as a 16-bit PCM WAV file."""
    rate = _check_rate(sample_rate)
    frames = _as_frames(samples)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(_pcm16(frames))
    return buffer.getvalue()


def mp3_bytes(samples, sample_rate: int, bitrate: int = 192) -> bytes:
    """Encode samples as a constant-bitrate MP3 (``bitrate`` in kbit/s) with LAME.

    ``sample_rate`` must be one MP3 supports (8000-48000 Hz, standard values).
    """
    rate = _check_rate(sample_rate)
    if rate not in _MP3_RATES:
        raise CapsuleError(f"MP3 cannot store {rate} Hz audio; use one of {', '.join(map(str, _MP3_RATES))}")
    if bitrate not in _MP3_BITRATES:
        raise CapsuleError(f"MP3 bitrate {bitrate} kbit/s is not one of {', '.join(map(str, _MP3_BITRATES))}")
    frames = _as_frames(samples)
    try:
        import lameenc  # noqa: PLC0415 - only needed for MP3 downloads
    except ImportError as exc:
        raise CapsuleError("MP3 export needs the Python package lameenc (pip install lameenc)") from exc
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(frames.shape[1])
    encoder.set_quality(5)  # LAME's "good" preset: twice as fast as "high", no audible loss at 192 kbit/s
    return bytes(encoder.encode(_pcm16(frames))) + bytes(encoder.flush())


_ENCODERS = {".wav": wav_bytes, ".mp3": mp3_bytes}


def render_audio(score: Score, path, sample_rate: int = 44100, *, metronome: bool = False) -> Path:
    """Render ``score`` and write it to ``path`` as WAV or MP3 (chosen by the suffix).

    The file is written atomically: a reader sees the old file or the whole new one.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    encode = _ENCODERS.get(path.suffix.lower())
    if encode is None:
        raise CapsuleError(f"cannot write audio as {path.suffix or 'a file without a suffix'!r}: use .wav or .mp3")
    if encode is mp3_bytes and sample_rate not in _MP3_RATES:
        # Fail before the (slow) render rather than after it.
        raise CapsuleError(f"MP3 cannot store {sample_rate} Hz audio; use one of {', '.join(map(str, _MP3_RATES))}")
    samples = synthesize(score, sample_rate, metronome=metronome)
    return atomic_write_bytes(path, encode(samples, sample_rate))


# What a notebook embeds: mono MP3, 64 kbit/s at 32 kHz -- about 240 kB per 30 s (320 kB as
# base64 inside the .ipynb) instead of 5 MB of 44.1 kHz stereo WAV, and it still sounds like the
# SoundFont (MP3 keeps everything up to ~14 kHz at this rate).
PLAYER_SAMPLE_RATE = 32000
PLAYER_BITRATE = 64


def player_bytes(score: Score, *, metronome: bool = False) -> bytes:
    """The compact MP3 that :func:`play` embeds: ``score`` rendered, mixed to mono, encoded."""
    frames = _as_frames(synthesize(score, PLAYER_SAMPLE_RATE, metronome=metronome))
    return mp3_bytes(frames.mean(axis=1), PLAYER_SAMPLE_RATE, bitrate=PLAYER_BITRATE)


def play(score: Score, *, metronome: bool = False):
    """An ``IPython.display.Audio`` player for ``score`` (display it as a cell's last line).

    The sound is embedded as a small mono MP3 (see :func:`player_bytes`), so a notebook
    saved with its outputs stays a few MB however many players it shows.
    """
    from IPython.display import Audio  # noqa: PLC0415 - notebooks only

    player = Audio(data=player_bytes(score, metronome=metronome))
    player.mimetype = "audio/mpeg"  # IPython assumes WAV for raw bytes
    return player
