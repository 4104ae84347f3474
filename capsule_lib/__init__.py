"""Composer Capsules helper library: the tested layer under the notebooks.

Import is cheap: heavy dependencies (torch, music21, mido, matplotlib,
FluidSynth) load on first use.  Every public name below is importable from the
package top, e.g. ``from capsule_lib import read_midi, load_sample``.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from .errors import CapsuleError
from .score import DEFAULT_RESOLUTION, MODEL_RESOLUTION, Note, Score, Track

__version__ = "0.1.0"

# public name -> submodule that defines it (loaded lazily on first access)
# fmt: off
_LAZY = {
    # MIDI and piano rolls
    "read_midi": "midi", "write_midi": "midi", "midi_bytes": "midi", "pick_melody": "midi",
    "to_pianoroll": "roll", "to_onsets": "roll", "to_multitrack_pianoroll": "roll", "to_multitrack_onsets": "roll",
    "from_pianoroll": "roll", "from_multitrack_pianoroll": "roll",
    "to_music21": "m21", "from_music21": "m21",
    # sample melodies
    "load_sample": "samples", "list_samples": "samples", "from_notation": "samples", "parse_notation": "samples",
    # editing
    "set_tempo": "edit", "transpose": "edit", "quantize": "edit", "humanize": "edit", "add_note": "edit",
    "remove_note": "edit", "toggle_note": "edit", "change_pitch": "edit", "change_length": "edit", "crop_bars": "edit",
    "arpeggiate": "edit", "tap_tempo": "edit", "auto_chord": "edit", "octave_shift": "edit", "resolve_sustain": "edit",
    "detect_key": "keys",
    "set_instrument": "edit",
    # audio
    "render_audio": "audio", "synthesize": "audio", "play": "audio", "metronome_track": "audio",
    "audio_backend": "audio", "wav_bytes": "audio", "mp3_bytes": "audio",
    # compositions, models, tags
    "CompositionStore": "store", "Composition": "store", "save_composition": "store", "list_compositions": "store",
    "load_composition": "store", "capsule_home": "store",
    "ModelRegistry": "models", "ModelCard": "models", "list_models": "models",
    "validate_tag": "tags", "TagError": "tags",
    # training
    "TrainConfig": "train", "Trainer": "train", "select_device": "train", "TrainingTask": "train", "History": "train",
    "load_modules": "train", "save_modules": "train", "seed_everything": "train",
    # hardware MIDI keyboards
    "record_midi": "recording", "list_midi_ports": "recording", "midi_status": "recording", "MidiRecorder": "recording",
    # techniques
    "enhance": "techniques.arcnn.sample",
    "extend": "techniques.transformer.sample",
    "accompany": "techniques.gan.sample",
    # pictures
    "plot_pianoroll": "plot", "plot_loss": "plot", "compare_pianorolls": "plot",
    "pitch_label": "keys",
    # what a notebook cell shows
    "show": "views", "show_pair": "views", "live_plot": "views", "metrics_table": "views",
    "plot_against_baseline": "views",
    "model_history": "models", "model_card_text": "models",
    # the music studio in one cell
    "Studio": "widgets.studio",
}
# fmt: on

__all__ = ["CapsuleError", "Note", "Track", "Score", "DEFAULT_RESOLUTION", "MODEL_RESOLUTION", *_LAZY, "doctor"]

_lazy_getattr, _lazy_dir = lazy_exports(__name__, _LAZY, globals())


def __getattr__(name: str):
    # ``doctor`` is a submodule that can be called: ``capsule_lib.doctor()`` runs the checks, and
    # stays the same object whether or not ``import capsule_lib.doctor`` came first.
    if name == "doctor":
        import importlib

        return importlib.import_module(f"{__name__}.doctor")
    return _lazy_getattr(name)


def __dir__():
    return sorted({*_lazy_dir(), "doctor"})
