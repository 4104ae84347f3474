"""Accompany a melody with a trained GAN: any length, window by window.

The melody is put on the model's grid (4 steps per beat, MIDI 24-107; notes outside that
range are moved by octaves for the generator's eyes only) and cut into 4-bar windows of
16 steps per bar; the generator writes the accompaniment of all windows in one batch, with
noise from ``seed``.  The result holds the input melody track *verbatim* (same notes,
resolution, instrument) followed by one track per accompaniment part, with the genre's
default General MIDI instruments (change one with :func:`capsule_lib.set_instrument`).
Accompaniment stops at the end of the melody's last bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ...datasets.multitrack import N_PITCHES, PITCH_HIGH, PITCH_LOW, RESOLUTION, SAMPLE_STEPS, GenreSpec
from ...errors import CapsuleError
from ...models import ModelRegistry, load_network
from ...score import Note, Score, Track
from ...threads import InferenceThreads
from .._common import finish_inference, resolve_model, start_inference, working_bar
from .data import roll_to_notes
from .decoder import EVAL_SEED, SWITCH_PENALTY, DecoderSettings, decode, joint_decoding
from .model import GanConfig, build_generator
from .voicing import melody_scales

__all__ = ["LoadedGan", "accompany", "load_gan", "melody_windows", "generator_output", "generate_samples"]

_MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class LoadedGan:
    """A GAN ready to accompany: its generator, its track layout and how its output is decoded.

    ``spec`` names the tracks (the melody first) and their default instruments; ``decoder``
    holds the settings the card records; ``fold`` is the cross-validation fold it held out
    (0: the fixed split) and ``name`` the registered model's (compositions record it).
    """

    generator: torch.nn.Module
    spec: GenreSpec
    decoder: DecoderSettings
    name: str = "custom"
    fold: int = 0

    @property
    def config(self) -> GanConfig:
        return self.generator.config

    @property
    def polyphony(self) -> tuple[int, ...]:
        return self.decoder.polyphony


def load_gan(name: str = "musegan-chorale", registry=None) -> LoadedGan:
    """A registered, finished GAN: its generator in eval mode, its tracks (``spec``) and the
    decoder's settings from its card -- ``voice_leading`` None for a card from before joint
    decoding, whose tracks are drawn on their own."""
    registry = registry if registry is not None else ModelRegistry()
    net = load_network(name, "gan", "a GAN", build_generator, GanConfig.from_dict, registry=registry)
    hp = registry.get(name).hyperparameters or {}
    try:
        vl = hp.get("voice_leading")
        gan = LoadedGan(
            net,
            GenreSpec.from_dict(hp["genre"]),
            DecoderSettings(
                polyphony=tuple(int(p) for p in hp["polyphony"]),
                switch_penalty=tuple(float(x) for x in hp.get("switch_penalty", [])) or SWITCH_PENALTY,
                chord_threshold=tuple(float(x) for x in hp.get("chord_threshold", [])) or 0.5,
                rest_weight=tuple(float(x) for x in hp.get("rest_weight", [])) or 1.0,
                voice_leading={str(k): float(v) for k, v in vl.items()} if isinstance(vl, dict) else None,
            ),
            name=name,
            fold=int(hp.get("fold", 0)),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CapsuleError(f"model {name} has no track layout in its card (hyperparameters.genre)") from None
    if len(gan.spec.tracks) != net.config.n_tracks or len(gan.polyphony) != net.config.n_tracks:
        raise CapsuleError(f"model {name}: its card's tracks do not match its network ({net.config.n_tracks} tracks)")
    return gan


def generator_output(gen, melodies: np.ndarray, seed: int = EVAL_SEED, batch: int = 64) -> np.ndarray:
    """The generator's raw accompaniment ``(n, tracks - 1, 64, 84)`` in [-1, 1] for bool melodies."""
    g = torch.Generator().manual_seed(int(seed))
    dev = next(gen.parameters()).device
    outs = []
    was_training = gen.training
    gen.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(melodies), batch):
                m = torch.from_numpy(np.asarray(melodies[i : i + batch], np.float32) * 2 - 1)[:, None].to(dev)
                noise = torch.randn(m.shape[0], gen.noise_dim, generator=g).to(dev)
                outs.append(gen(m, noise).cpu().numpy())
    finally:
        gen.train(was_training)
    return np.concatenate(outs)


def generate_samples(
    gan: LoadedGan, melodies: np.ndarray, seed: int = EVAL_SEED, batch: int = 64, scales: np.ndarray | None = None
) -> np.ndarray:
    """Melodies ``(n, 64, 84)`` bool -> samples ``(n, tracks, 64, 84)`` bool with fixed noise ``seed``.

    Decoded with the GAN's settings; a GAN with ``voice_leading`` weights has its tracks drawn
    jointly (see :func:`~capsule_lib.techniques.gan.decoder.decode`), kept in the key of each
    melody or, with ``scales`` (``(n, 12)`` bool), in those scales.
    """
    d = gan.decoder
    acc = decode(
        generator_output(gan.generator, melodies, seed, batch),
        d.polyphony[1:],
        d.switch_penalty,
        seed=seed,
        chord_threshold=d.chord_threshold,
        rest_weight=d.rest_weight,
        **joint_decoding(gan.spec, d.voice_leading, melodies, scales),
    )
    return np.concatenate([np.asarray(melodies, bool)[:, None], acc], axis=1)


def melody_windows(track: Track, resolution: int) -> np.ndarray:
    """``(windows, 64, 84)`` bool: the melody on the model grid, cut into 4-bar windows."""
    ratio = Fraction(RESOLUTION, resolution)
    cells = []
    for n in track.notes:
        s = int(round(n.start * ratio))
        e = max(int(round(n.end * ratio)), s + 1)
        p = n.pitch
        while p < PITCH_LOW:
            p += 12
        while p > PITCH_HIGH:
            p -= 12
        cells.append((s, e, p - PITCH_LOW))
    end = max(e for _, e, _ in cells)
    n_windows = -(-end // SAMPLE_STEPS)
    roll = np.zeros((n_windows * SAMPLE_STEPS, N_PITCHES), bool)
    for s, e, p in cells:
        roll[s:e, p] = True
    return roll.reshape(n_windows, SAMPLE_STEPS, N_PITCHES)


def accompany(
    score: Score,
    model="musegan-chorale",
    seed: int | None = None,
    save: bool = True,
    *,
    track: int | str = 0,
    parent=None,
    title: str | None = None,
    return_composition: bool = False,
    progress: bool | None = None,
):
    """Write accompaniment tracks for a melody with a GAN.

    Parameters
    ----------
    score : Score
        The input; its melody track (``track``, default 0) is accompanied.  Any
        resolution, tempo, time signature and length.
    model : str or LoadedGan
        A registered GAN (default the sample model ``"musegan-chorale"``; also
        ``"musegan-quartet"``, ``"musegan-renaissance"`` or a custom one) or a GAN
        from :func:`load_gan`.
    seed : int, optional
        Noise seed: same seed, same accompaniment (None draws one; it is recorded).
    save : bool
        Save the result as a composition (technique ``"gan"``, the model, the seed, ``parent``).
    track : int or str
        The melody track.
    parent : str or Composition, optional
    title : str, optional
    return_composition : bool
        Return ``(score, composition)``.
    progress : bool or None
        A progress bar while the generator runs, shown once the call has run 2 s: None
        (default) where someone watches (a terminal, a notebook), True always, False never.

    Returns
    -------
    Score
        The melody track unchanged, then the accompaniment tracks; same resolution,
        tempo and time signature as the input.
    """
    if not isinstance(score, Score):
        raise CapsuleError(f"accompany needs a Score, not {type(score).__name__}")
    flags = {"save": save, "return_composition": return_composition}
    used_seed, ti, melody = start_inference("accompany", score, seed, _MAX_SEED, track, progress, **flags)
    if not melody.notes:
        raise CapsuleError("the melody has no notes; record or load one first")
    net = resolve_model(model, "gan", "a LoadedGan from load_gan()", accepts=LoadedGan)
    windows = melody_windows(melody, score.resolution)
    scales = None
    if net.decoder.voice_leading:  # every window in the key of the whole melody
        scales = np.repeat(melody_scales(windows.reshape(1, -1, N_PITCHES), PITCH_LOW), len(windows), axis=0)
    # One thread per free core (spinning threads stall on a busy machine); a bar after 2 s.
    with InferenceThreads(), working_bar("accompanying", progress):
        samples = generate_samples(net, windows, seed=used_seed, scales=scales)  # (w, tracks, 64, 84)
    acc = samples[:, 1:].transpose(1, 0, 2, 3).reshape(samples.shape[1] - 1, -1, N_PITCHES)
    # stop at the end of the melody's last bar (the score's bar, on the model grid)
    bar = max(1, int(round(Fraction(score.steps_per_bar * RESOLUTION, score.resolution))))
    grid_end = int(np.flatnonzero(windows.reshape(-1, N_PITCHES).any(axis=1)).max()) + 1
    acc = acc[:, : -(-grid_end // bar) * bar]
    velocity = max(1, int(np.median([n.velocity for n in melody.notes])) - 10)
    spec = net.spec
    ratio = Fraction(score.resolution, RESOLUTION)
    new_tracks = []
    for i in range(acc.shape[0]):
        notes = []
        for n in roll_to_notes(acc[i], velocity):
            s = int(round(n.start * ratio))
            e = max(int(round(n.end * ratio)), s + 1)
            notes.append(Note(s, n.pitch, e - s, velocity))
        new_tracks.append(
            Track(
                name=spec.tracks[i + 1], program=spec.programs[i + 1], is_drum=spec.is_drum[i + 1], notes=tuple(notes)
            )
        )
    result = score.replace(tracks=(melody, *new_tracks))

    parameters = {"seed": used_seed, "track": ti, "windows": int(len(windows)), "accompaniment": list(spec.tracks[1:])}
    return finish_inference(
        result, "gan", net, parameters, save=save, parent=parent, title=title, return_composition=return_composition
    )
