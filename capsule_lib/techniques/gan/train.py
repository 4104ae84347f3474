"""Training a melody-conditioned GAN (WGAN-GP) with the shared harness.

:class:`GanTask` plugs a generator and a critic into :class:`capsule_lib.train.Trainer`.
Every step updates the critic (Wasserstein loss plus a gradient penalty of weight 10 on
random interpolations of real and generated samples); every ``update_ratio``-th step
also updates the generator (the console's "update ratio": critic updates per generator
update).  Both use Adam with the console's default learning rate 0.001 and
``betas=(0.5, 0.9)`` (Gulrajani et al., 2017).

The generator's loss adds, as in pix2pix (Isola et al., 2017), a reconstruction term:
``recon_weight`` x the binary cross entropy between its output (read as the probability
``(x + 1) / 2`` that a cell sounds) and the real accompaniment of the same melody.  It
teaches the harmony that fits a melody in minutes instead of hours of CPU time; the
adversarial term keeps the output sharp and varied.  ``recon_weight=0`` is a pure WGAN-GP.

After every epoch the generator accompanies a fixed set of validation melodies with
fixed noise; the per-track metrics of those samples join the epoch's history next to the
ground truth (the same metrics on the real accompaniment), and every ``sample_every``
epochs (and the first and last) the samples are written as MIDI and a piano-roll PNG.

:func:`train_gan` is the whole job, as ``capsule train gan`` runs it: register the model,
train (checkpoints in ``$CAPSULE_HOME/runs/gan/<name>``; an interrupted run resumes),
save the generator's weights as safetensors, evaluate on the test split, write the card
(``README.md``, ``history.json``, ``loss.png``, ``metrics.png``, ``sample.mid``) and mark
the model ``complete`` (or ``failed``).
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ...atomic import atomic_write_bytes, atomic_write_text
from ...datasets.multitrack import GENRES, MultitrackDataset, build_genre_dataset
from ...errors import CapsuleError
from ...train import TrainConfig, Trainer, TrainingTask
from .._common import check_name_free, provenance, training_run
from .data import GanSamples, batch_metrics, roll_to_score
from .model import ALGORITHMS, Critic, GanConfig, build_generator

__all__ = ["GanTask", "train_gan", "record_cross_validation", "retune_for_joint_decoding", "resolve_dataset", "decode", "viterbi_line", "sample_line", "track_polyphony",
           "generator_output", "generate_samples", "calibrate_decoder", "pitch_class_rate", "empty_bar_share",
           "chord_share", "gradient_penalty", "EVAL_SEED", "DEFAULT_UPDATE_RATIO", "DEFAULT_LR"]

EVAL_SEED = 20240611
DEFAULT_LR = 1e-3
DEFAULT_UPDATE_RATIO = 4
GP_WEIGHT = 10.0
DEFAULT_RECON_WEIGHT = 50.0
#: Log-probability cost of a change of note in a single-line track (see :func:`viterbi_line`).
SWITCH_PENALTY = 3.0


def track_polyphony(samples: np.ndarray) -> list[int]:
    """Per track, the most pitches that sound together at 99 % of its sounding steps (>= 1).

    A voice of a chorale gives 1; a piano part gives its usual chord size.  Decoding keeps
    at most that many pitches per step, so generated tracks keep the texture of the data.
    """
    out = []
    for t in range(samples.shape[1]):
        counts = samples[:, t].sum(axis=-1).ravel()
        counts = counts[counts > 0]
        out.append(max(1, int(np.percentile(counts, 99))) if len(counts) else 1)
    return out


def viterbi_line(prob: np.ndarray, switch_penalty: float = SWITCH_PENALTY) -> np.ndarray:
    """The best single line through ``(n, steps, pitches)`` note probabilities.

    States are the pitches plus a rest (probability ``1 - sum``, at least 1e-6), each
    step's probabilities normalised; the score of a path is the sum of its log
    probabilities minus ``switch_penalty`` for every change of state, so the line holds
    notes instead of flickering between neighbours step by step.  This is the single most
    likely line, which plays safe (few distinct pitches); :func:`sample_line` draws one.
    Returns ``(n, steps)`` state indices (``pitches`` = rest).
    """
    eps = 1e-6
    n, steps, pitches = prob.shape
    rest = np.clip(1 - prob.sum(axis=-1, keepdims=True), eps, 1)
    states_p = np.concatenate([np.clip(prob, eps, 1), rest], axis=-1)
    log_e = np.log(states_p / states_p.sum(axis=-1, keepdims=True))  # (n, steps, S)
    delta = log_e[:, 0].copy()
    back = np.zeros((n, steps, pitches + 1), np.int16)
    states = np.arange(pitches + 1)
    for t in range(1, steps):
        best = delta.argmax(axis=1)
        switch = delta[np.arange(n), best][:, None] - switch_penalty
        stay = delta >= switch
        back[:, t] = np.where(stay, states[None], best[:, None])
        delta = np.maximum(delta, switch) + log_e[:, t]
    path = np.zeros((n, steps), np.int64)
    path[:, -1] = delta.argmax(axis=1)
    for t in range(steps - 1, 0, -1):
        path[:, t - 1] = back[np.arange(n), t, path[:, t]]
    return path


def sample_line(prob: np.ndarray, switch_penalty: float, rng, rest_weight: float = 1.0) -> np.ndarray:
    """A line *drawn* from ``(n, steps, pitches)`` note probabilities (forward filtering,
    backward sampling).

    The same states as :func:`viterbi_line` (pitches + rest, each step normalised), read
    as a hidden Markov model whose line changes state at each step with probability
    ``exp(-switch_penalty)`` (to a state drawn uniformly) and otherwise holds: the path is
    drawn from its posterior given the generator's probabilities, so whole notes -- not
    single steps -- are sampled, with the model's own variety.  ``rest_weight`` multiplies
    the rest's probability before normalising.  Returns ``(n, steps)``.
    """
    eps = 1e-6
    n, steps, pitches = prob.shape
    rest = np.clip(1 - prob.sum(axis=-1, keepdims=True), eps, 1) * rest_weight
    e = np.concatenate([np.clip(prob, eps, 1), rest], axis=-1)
    e = e / e.sum(axis=-1, keepdims=True)
    n_states = pitches + 1
    change = min(1.0, float(np.exp(-switch_penalty)))
    alpha = np.empty_like(e)
    a = e[:, 0] / e[:, 0].sum(axis=-1, keepdims=True)
    alpha[:, 0] = a
    for t in range(1, steps):
        pred = (1 - change) * a + change / n_states
        a = pred * e[:, t]
        a /= a.sum(axis=-1, keepdims=True)
        alpha[:, t] = a
    path = np.empty((n, steps), np.int64)
    rows = np.arange(n)

    def draw(w):
        c = np.cumsum(w, axis=-1)
        u = rng.random((n, 1)) * c[:, -1:]
        return np.minimum((c < u).sum(axis=-1), n_states - 1)

    path[:, -1] = draw(alpha[:, -1])
    for t in range(steps - 2, -1, -1):
        w = alpha[:, t] * (change / n_states)
        w[rows, path[:, t + 1]] += alpha[rows, t, path[:, t + 1]] * (1 - change)
        path[:, t] = draw(w)
    return path


def decode(output: np.ndarray, polyphony: list[int], switch_penalty=SWITCH_PENALTY, seed: int | None = None,
           chord_threshold=0.5, rest_weight=1.0, *, melody: np.ndarray | None = None, voice_leading=None,
           ranges=None, drums=None, scales=None) -> np.ndarray:
    """Generator output ``(n, tracks, steps, pitches)`` in [-1, 1] -> bool rolls.

    A cell's value ``x`` reads as the probability ``(x + 1) / 2`` that it sounds.  Every
    track gets its most likely *line* through those probabilities (:func:`viterbi_line`:
    a note or a rest at each step, ``switch_penalty`` per change -- one number or one per
    track; with ``seed`` the line is sampled, see :func:`viterbi_line`); a track whose
    polyphony ``k`` is above 1 (double stops, chords) also plays up to ``k - 1`` further
    cells whose probability is above ``chord_threshold`` (one number or one per track) at
    that step.  ``rest_weight`` (one or per track) scales the probability of resting.

    With ``voice_leading`` (penalty weights, see
    :func:`~capsule_lib.techniques.gan.voicing.decode_voices`), the ``melody`` ``(n, steps,
    pitches)`` and a ``seed``, the tracks are drawn *jointly* instead: one after another, each
    given the melody and the tracks already drawn, so that they avoid parallel fifths and
    octaves, clashes, crossings, notes out of key (the melody's, or ``scales``) and (with
    ``ranges``, per track) leaving their range; tracks flagged in ``drums`` are drawn on their own.
    """
    k = len(polyphony)

    def per_track(x):
        return list(x) if isinstance(x, (list, tuple)) else [x] * k

    if voice_leading is not None and melody is not None and seed is not None:
        from .voicing import decode_voices

        return decode_voices(output, melody, polyphony, switch_penalty=per_track(switch_penalty),
                             rest_weight=per_track(rest_weight), chord_threshold=per_track(chord_threshold),
                             seed=seed, weights=voice_leading, ranges=ranges, drums=drums, scales=scales)
    thresholds = list(chord_threshold) if isinstance(chord_threshold, (list, tuple)) else [chord_threshold] * len(polyphony)
    rests = list(rest_weight) if isinstance(rest_weight, (list, tuple)) else [rest_weight] * len(polyphony)
    rng = None if seed is None else np.random.default_rng(int(seed))
    out = np.asarray(output, dtype=np.float64)
    penalties = list(switch_penalty) if isinstance(switch_penalty, (list, tuple)) else [switch_penalty] * len(polyphony)
    prob = (out + 1) / 2
    on = np.zeros(out.shape, bool)
    pitches = out.shape[-1]
    for t, p in enumerate(polyphony):
        pt = prob[:, t]
        if rng is not None:
            path = sample_line(pt, float(penalties[t]), rng, float(rests[t]))
        else:
            path = viterbi_line(pt, float(penalties[t]))
        onehot = np.zeros(pt.shape[:-1] + (pitches + 1,), bool)
        np.put_along_axis(onehot, path[..., None], True, axis=-1)
        line = onehot[..., :pitches]
        if p > 1:
            # chord notes: above the threshold, and no likelier than the line's own note (a
            # sampled line that took a less likely pitch must not get the likelier one added)
            p_line = np.where(path < pitches, np.take_along_axis(pt, np.minimum(path, pitches - 1)[..., None], -1)[..., 0], 0.0)
            extra = (pt > float(thresholds[t])) & ~line & (pt <= p_line[..., None])
            if p - 1 < pitches:
                masked = np.where(extra, pt, -1.0)
                kth = -np.partition(-masked, p - 2, axis=-1)[..., p - 2:p - 1]  # the (p-1)-th strongest extra
                extra &= masked >= kth
            line = line | extra
        on[:, t] = line
    return on


#: Switch penalties tried when calibrating a track's decoder: ``-log(1 - h)`` for a chance
#: ``h`` that a sampled line holds its state from one step to the next, 0 .. 0.99.
PENALTY_GRID = tuple(float(-np.log1p(-h)) for h in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7,
                                                      0.9, 0.97, 0.99))


def pitch_class_rate(samples: np.ndarray) -> list[float]:
    """Per track, distinct pitch classes per non-empty bar of ``(n, tracks, steps, 84)`` bool rolls,
    averaged per sample and then over samples -- the metric ``pitch_classes_used`` as
    :func:`~capsule_lib.techniques.gan.data.batch_metrics` reports it, computed on rolls in one go."""
    s = np.asarray(samples, bool)
    n, k, steps, pitches = s.shape
    bars = s.reshape(n, k, steps // 16, 16, pitches).any(axis=3)
    pad = (-pitches) % 12
    classes = np.pad(bars, ((0, 0), (0, 0), (0, 0), (0, pad))).reshape(n, k, steps // 16, -1, 12).any(axis=3)
    counts = classes.sum(axis=-1)  # (n, k, bars)
    used = (counts > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_sample = counts.sum(axis=-1) / used  # NaN for a silent track
    return [float(np.nanmean(per_sample[:, t])) if (used[:, t] > 0).any() else 0.0 for t in range(k)]


#: Rest weights tried when calibrating a track's decoder.
REST_GRID = (0.25, 0.35, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 12.0, 16.0,
             24.0, 32.0)


def empty_bar_share(samples: np.ndarray) -> list[float]:
    """Per track, the share of bars (16 steps) without a sounding note, over all samples (every
    sample has the same number of bars, so this is also the mean of the per-sample metric
    ``empty_bar_rate``)."""
    s = np.asarray(samples, bool)
    n, k, steps, pitches = s.shape
    bars = s.reshape(n, k, steps // 16, 16 * pitches).any(axis=-1)
    return [float(1 - bars[:, t].mean()) for t in range(k)]


def _closest(grid, stat, target: float) -> float:
    """The value of ``grid`` whose ``stat(value)`` is closest to ``target``, for a statistic that
    moves one way along the grid (bisection: about ``log2(len(grid)) + 2`` evaluations)."""
    seen = {}

    def f(i):
        if i not in seen:
            seen[i] = stat(grid[i])
        return seen[i]

    lo, hi = 0, len(grid) - 1
    increasing = f(hi) >= f(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return grid[min((lo, hi), key=lambda i: abs(f(i) - target))]


def calibrate_decoder(output: np.ndarray, polyphony: list[int], pitch_classes: list[float], empty_bars: list[float],
                      chords: list[float]) -> tuple[list[float], list[float], list[float]]:
    """``(switch penalties, rest weights, chord thresholds)`` per accompaniment track, fitted on
    generator ``output`` so the sampled tracks have the given pitch classes per bar, share of
    empty bars and polyphonic rate, in that order (the first two fitted twice since each moves
    the other).  During training the targets are those of the real accompaniment of the
    validation melodies whose ``output`` this is.  Each statistic moves one way along its setting's grid (more
    penalty, fewer pitch classes; more rest weight, more empty bars; a higher threshold,
    fewer chords), so each fit is a bisection of the grid."""
    penalties, rests, thresholds = [], [], []
    for t, p in enumerate(polyphony):
        one = output[:, t:t + 1]

        def stat(fn, pen, rest, th=0.5):
            return fn(decode(one, [p], pen, seed=EVAL_SEED, rest_weight=rest, chord_threshold=th))[0]

        rest = 1.0
        for _ in range(2):
            pen = _closest(PENALTY_GRID, lambda x: stat(pitch_class_rate, x, rest), pitch_classes[t])
            rest = _closest(REST_GRID, lambda r: stat(empty_bar_share, pen, r), empty_bars[t])
        penalties.append(float(pen))
        rests.append(float(rest))
        if p == 1:
            thresholds.append(0.5)
            continue
        thresholds.append(float(_closest(THRESHOLD_GRID, lambda th: stat(chord_share, pen, rest, th), chords[t])))
    return penalties, rests, thresholds


#: Chord-note thresholds tried when calibrating a track with polyphony above 1.
THRESHOLD_GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9,
                  0.95, 1.01)


def chord_share(samples: np.ndarray) -> list[float]:
    """Per track, the fraction of its sounding steps with two or more notes, per sample and then
    averaged over samples with any sound (the metric ``polyphonic_rate`` as
    :func:`~capsule_lib.techniques.gan.data.batch_metrics` reports it)."""
    counts = np.asarray(samples, bool).sum(axis=-1)  # (n, tracks, steps)
    sounding = (counts > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_sample = (counts >= 2).sum(axis=-1) / sounding
    return [float(np.nanmean(per_sample[:, t])) if (sounding[:, t] > 0).any() else 0.0
            for t in range(counts.shape[1])]


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``mean((|grad critic(x)| - 1)^2)`` at random points between real and generated samples."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(x)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _finite(x):
    """``x`` with every NaN (a metric of a silent track) replaced by None, so it can be stored as JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _metric_key(track: str, metric: str) -> str:
    return f"gen/{track}/{metric}"


class GanTask(TrainingTask):
    """A melody-conditioned WGAN-GP for :class:`~capsule_lib.train.Trainer`.

    Parameters
    ----------
    dataset : MultitrackDataset
    model_config : GanConfig
    update_ratio : int
        Critic updates per generator update (>= 1).
    recon_weight : float
        Weight of the reconstruction term in the generator's loss (0: pure WGAN-GP).
    n_eval : int
        Validation melodies (at most; spread over every validation piece) accompanied after
        every epoch for the metrics and the decoder's calibration.
    sample_every : int
        Write MIDI and piano-roll samples every this many epochs (and the first and last).
    epochs : int
        The run's length (so the last epoch's samples are written).
    voice_leading : dict or None
        Penalty weights with which the accompaniment's tracks are drawn jointly (see
        :mod:`~capsule_lib.techniques.gan.voicing`); None draws each track on its own.
    """

    def __init__(self, dataset: MultitrackDataset, model_config: GanConfig, *, update_ratio: int = DEFAULT_UPDATE_RATIO,
                 n_eval: int = 1024, sample_every: int = 10, epochs: int = 1,
                 recon_weight: float = DEFAULT_RECON_WEIGHT, voice_leading: dict | None = None):
        if isinstance(update_ratio, bool) or not isinstance(update_ratio, int) or not 1 <= update_ratio <= 100:
            raise CapsuleError(f"update ratio must be a whole number 1-100, got {update_ratio!r}")
        if isinstance(recon_weight, bool) or not isinstance(recon_weight, (int, float)) or not 0 <= recon_weight <= 1000:
            raise CapsuleError(f"reconstruction weight must be a number 0-1000, got {recon_weight!r}")
        self.recon_weight = float(recon_weight)
        self.dataset = dataset
        self.spec = dataset.spec
        self.config = model_config
        self.update_ratio = update_ratio
        self.sample_every = max(1, int(sample_every))
        self.epochs = epochs
        self.train_samples = dataset.samples("train")
        if len(self.train_samples) == 0:
            raise CapsuleError("the training split has no 4-bar samples with a melody")
        # The held-out melodies of the per-epoch metrics and of the decoder's calibration: the
        # validation split (never the test split, which only the final report reads); a data set
        # too small to have one falls back to training samples, and the card says so.
        evals, self.eval_split = dataset.samples("validation"), "validation"
        if len(evals) == 0:
            evals, self.eval_split = self.train_samples[:: max(1, len(self.train_samples) // n_eval)], "train"
        if len(evals) > n_eval:  # spread over every validation piece, not the first few
            evals = evals[np.unique(np.linspace(0, len(evals) - 1, n_eval).round().astype(int))]
        self.eval_samples = evals
        self.polyphony = track_polyphony(self.train_samples)
        self.ground_truth = _finite(batch_metrics(self.eval_samples, self.spec))
        # The decoder's targets: the real accompaniment of those same held-out melodies.
        self.density = pitch_class_rate(self.eval_samples)
        self.switch_penalty = [SWITCH_PENALTY] * (len(self.spec.tracks) - 1)
        self.chords = chord_share(self.eval_samples)
        self.chord_threshold = [0.5] * (len(self.spec.tracks) - 1)
        self.empty_bars = empty_bar_share(self.eval_samples)
        self.rest_weight = [1.0] * (len(self.spec.tracks) - 1)
        self.voice_leading = dict(voice_leading) if voice_leading is not None else None

    def build(self, device):
        return {"generator": build_generator(self.config).to(device), "critic": Critic(self.config).to(device)}

    def configure_optimizers(self, modules, config):
        return {name: torch.optim.Adam(m.parameters(), lr=config.lr, betas=(0.5, 0.9)) for name, m in modules.items()}

    def train_dataset(self):
        return GanSamples(self.train_samples, transpose=True)

    def training_step(self, modules, optimizers, batch, step):
        gen, critic = modules["generator"], modules["critic"]
        melody = batch[:, :1]
        with torch.no_grad():
            fake = torch.cat([melody, gen(melody)], 1)
        d_real = critic(batch).mean()
        d_fake = critic(fake).mean()
        gp = gradient_penalty(critic, batch, fake)
        d_loss = d_fake - d_real + GP_WEIGHT * gp
        self.optimize(optimizers["critic"], d_loss)
        out = {"critic_loss": d_loss.detach(), "wasserstein": (d_real - d_fake).detach(), "gradient_penalty": gp.detach()}
        if step % self.update_ratio == self.update_ratio - 1:
            acc = gen(melody)
            g_adv = -critic(torch.cat([melody, acc], 1)).mean()
            g_loss = g_adv
            if self.recon_weight:
                prob = ((acc + 1) / 2).clamp(1e-6, 1 - 1e-6)
                recon = torch.nn.functional.binary_cross_entropy(prob, (batch[:, 1:] + 1) / 2)
                g_loss = g_adv + self.recon_weight * recon
                out["reconstruction"] = recon.detach()
            self.optimize(optimizers["generator"], g_loss)
            out["generator_loss"] = g_loss.detach()
            out["generator_adversarial"] = g_adv.detach()
        return out

    def _voice_leading_args(self, melodies) -> dict:
        if self.voice_leading is None:
            return {}
        from .voicing import part_ranges

        return {"melody": np.asarray(melodies, bool), "voice_leading": self.voice_leading,
                "ranges": part_ranges(self.spec.tracks[1:]), "drums": list(self.spec.is_drum[1:])}

    def state_dict(self):
        return {"switch_penalty": list(self.switch_penalty), "chord_threshold": list(self.chord_threshold),
                "rest_weight": list(self.rest_weight)}

    def load_state_dict(self, state):
        self.switch_penalty = [float(x) for x in state.get("switch_penalty", self.switch_penalty)]
        self.chord_threshold = [float(x) for x in state.get("chord_threshold", self.chord_threshold)]
        self.rest_weight = [float(x) for x in state.get("rest_weight", self.rest_weight)]

    def on_sample(self, modules, epoch, out_dir):
        melodies = self.eval_samples[:, 0]
        raw = generator_output(modules["generator"], melodies, EVAL_SEED)
        # the decoder's settings are tuned on these validation melodies to their real accompaniment
        self.switch_penalty, self.rest_weight, self.chord_threshold = calibrate_decoder(
            raw, self.polyphony[1:], self.density[1:], self.empty_bars[1:], self.chords[1:])
        # each track's settings are fitted on its own; the tracks are then drawn together, and at the
        # end of training the settings are refitted for the joint draw
        if self.voice_leading is not None and epoch == self.epochs:
            from .voicing import calibrate_jointly

            vl = self._voice_leading_args(melodies)
            self.switch_penalty, self.rest_weight, self.chord_threshold = calibrate_jointly(
                raw, vl["melody"], self.polyphony[1:], pitch_classes=self.density[1:], empty_bars=self.empty_bars[1:],
                chords=self.chords[1:], switch_penalty=self.switch_penalty, rest_weight=self.rest_weight,
                chord_threshold=self.chord_threshold, seed=EVAL_SEED, weights=self.voice_leading, ranges=vl["ranges"],
                drums=vl["drums"])
        acc = decode(raw, self.polyphony[1:], self.switch_penalty, seed=EVAL_SEED, chord_threshold=self.chord_threshold,
                     rest_weight=self.rest_weight, **self._voice_leading_args(melodies))
        samples = np.concatenate([np.asarray(melodies, bool)[:, None], acc], axis=1)
        metrics = batch_metrics(samples, self.spec)
        record = {f"switch_penalty/{name}": v for name, v in zip(self.spec.tracks[1:], self.switch_penalty)}
        for track, values in metrics["tracks"].items():
            for key, v in values.items():
                if not math.isnan(v):  # a silent track has no pitches used: leave a gap, not NaN
                    record[_metric_key(track, key)] = v
        for pair, v in metrics["tonal_distance"].items():
            if not math.isnan(v):
                record[f"gen/tonal_distance/{pair}"] = v
        if epoch == 1 or epoch % self.sample_every == 0 or epoch == self.epochs:
            _write_samples(samples[:4], self.spec, out_dir, f"epoch {epoch}")
        else:
            out_dir.rmdir() if out_dir.is_dir() and not any(out_dir.iterdir()) else None
        return record


def generate_samples(gen, melodies: np.ndarray, polyphony: list[int], seed: int = EVAL_SEED,
                     batch: int = 64, switch_penalty=None, scales: np.ndarray | None = None) -> np.ndarray:
    """Melodies ``(n, 64, 84)`` bool -> samples ``(n, tracks, 64, 84)`` bool with fixed noise ``seed``.

    ``switch_penalty`` (one per accompaniment track) defaults to the generator's calibrated
    ``switch_penalty`` attribute (set by :func:`~capsule_lib.techniques.gan.load_gan`), else
    :data:`SWITCH_PENALTY`.  A generator whose card holds ``voice_leading`` weights (its
    ``voice_leading`` attribute) has its tracks drawn jointly (see :func:`decode`), kept in the
    key of each melody or, with ``scales`` (``(n, 12)`` bool), in those scales.
    """
    if switch_penalty is None:
        switch_penalty = getattr(gen, "switch_penalty", SWITCH_PENALTY)
    acc = decode(generator_output(gen, melodies, seed, batch), polyphony[1:], switch_penalty, seed=seed,
                 chord_threshold=getattr(gen, "chord_threshold", 0.5), rest_weight=getattr(gen, "rest_weight", 1.0),
                 **voice_leading_args(gen, melodies, scales))
    return np.concatenate([np.asarray(melodies, bool)[:, None], acc], axis=1)


def voice_leading_args(gen, melodies: np.ndarray, scales: np.ndarray | None = None) -> dict:
    """The keyword arguments of :func:`decode` that make a generator's tracks be drawn jointly:
    empty for a generator without ``voice_leading`` weights (a card from before joint decoding)."""
    weights = getattr(gen, "voice_leading", None)
    if weights is None:
        return {}
    from .voicing import part_ranges

    spec = gen.spec
    return {"melody": np.asarray(melodies, bool), "voice_leading": weights, "ranges": part_ranges(spec.tracks[1:]),
            "drums": list(spec.is_drum[1:]), "scales": scales}


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
                m = torch.from_numpy(np.asarray(melodies[i:i + batch], np.float32) * 2 - 1)[:, None].to(dev)
                noise = torch.randn(m.shape[0], gen.noise_dim, generator=g).to(dev)
                outs.append(gen(m, noise).cpu().numpy())
    finally:
        gen.train(was_training)
    return np.concatenate(outs)


def _write_samples(samples: np.ndarray, spec, out_dir: Path, title: str) -> None:
    from ...midi import write_midi

    for i, s in enumerate(samples):
        score = roll_to_score(s, spec, title=f"{title}, sample {i + 1}")
        if any(t.notes for t in score.tracks):
            write_midi(score, out_dir / f"sample_{i + 1}.mid")
    try:
        from ...plot import plot_pianoroll, subplots

        fig, ax = subplots(figsize=(10, 4), layout="constrained", standalone=True)
        plot_pianoroll(roll_to_score(samples[0], spec, title=title), tracks=None, ax=ax)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        atomic_write_bytes(out_dir / "pianoroll.png", buf.getvalue())
    except ImportError:  # matplotlib is a dependency; be quiet if a slim install lacks it
        pass


def resolve_dataset(dataset, *, limit: int | None = None, progress: bool = True) -> MultitrackDataset:
    """A genre name (``chorale``, ``quartet``, ``renaissance``), a folder of LPD-5 ``.npz`` or
    MIDI files, or a :class:`MultitrackDataset` -> the data set."""
    if isinstance(dataset, MultitrackDataset):
        return dataset
    if not isinstance(dataset, (str, Path)):
        raise CapsuleError(f"dataset must be a genre name or a folder, not {type(dataset).__name__}")
    if str(dataset) in GENRES:
        return build_genre_dataset(str(dataset), progress=progress, limit=limit)
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        raise CapsuleError(f"unknown dataset {str(dataset)!r}: use {', '.join(GENRES)} or a folder of LPD-5 .npz or MIDI files")
    from ...datasets.external import load_lpd5, load_midi_folder

    if next(folder.rglob("*.npz"), None) is not None:
        return load_lpd5(folder, limit=limit, progress=progress)
    return load_midi_folder(folder, limit=limit, progress=progress)


def train_gan(
    name: str,
    algorithm: str = "musegan",
    dataset="chorale",
    epochs: int = 20,
    lr: float = DEFAULT_LR,
    update_ratio: int = DEFAULT_UPDATE_RATIO,
    batch_size: int = 32,
    seed: int = 0,
    *,
    recon_weight: float = DEFAULT_RECON_WEIGHT,
    limit: int | None = None,
    progress: bool = True,
    model_config: GanConfig | Mapping[str, Any] | None = None,
    max_steps_per_epoch: int | None = None,
    sample_every: int = 10,
    device: str = "auto",
    evaluate: bool = True,
    registry=None,
    on_epoch_end: Callable | None = None,
    description: str | None = None,
    fold: int = 0,
    voice_leading=True,
):
    """Train a melody-conditioned GAN and register it as a custom model (technique ``"gan"``).

    Parameters
    ----------
    name : str
        The new model's name (an unfinished run of the same name is resumed).
    algorithm : {"musegan", "unet"}
    dataset : str, path or MultitrackDataset
        A genre (``chorale``, ``quartet``, ``renaissance``), or a folder of LPD-5 ``.npz``
        or multi-track MIDI files.
    epochs, lr, batch_size, seed
        Training hyperparameters (console defaults: learning rate 0.001).
    update_ratio : int
        Critic updates per generator update (console example: 4).
    recon_weight : float
        Weight of the generator's reconstruction term (0: pure WGAN-GP; see the module).
    limit : int, optional
        Use only the first ``limit`` pieces (quick runs).
    max_steps_per_epoch : int, optional
        Cut epochs short (classroom smoke runs).
    sample_every : int
        Write MIDI + piano-roll samples every this many epochs.
    evaluate : bool
        Evaluate on the test split afterwards (metrics vs ground truth).
    fold : int
        Which bucket of the split rule is held out: 0 (the default) is the fixed split,
        1-9 the other folds of a 10-fold cross-validation (see
        :func:`~capsule_lib.techniques.gan.evaluate.cross_validate`).
    voice_leading : bool or dict
        Draw the accompaniment's tracks jointly, with these penalty weights (True: the
        defaults, :data:`~capsule_lib.techniques.gan.voicing.VOICE_LEADING`); False draws each
        track on its own.  Recorded in the card, so the model decodes the same way later.

    Returns
    -------
    ModelCard
    """
    from ...models import ModelRegistry

    if algorithm not in ALGORITHMS:
        raise CapsuleError(f"unknown GAN algorithm {algorithm!r} (expected musegan or unet)")
    registry = registry if registry is not None else ModelRegistry()
    ds = resolve_dataset(dataset, limit=limit, progress=progress)
    if fold != ds.fold:
        ds = ds.with_fold(fold)
    if isinstance(model_config, Mapping):
        model_config = GanConfig.from_dict(dict(model_config))
    model_config = model_config or GanConfig()
    model_config = GanConfig.from_dict({**model_config.to_dict(), "algorithm": algorithm, "n_tracks": ds.n_tracks})
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device, drop_last=True,
                         max_steps_per_epoch=max_steps_per_epoch, progress=progress, sample_every=1)
    existing = check_name_free(registry, name, "gan")
    from .voicing import VOICE_LEADING, part_ranges

    if voice_leading is True:
        voice_leading = dict(VOICE_LEADING)
    elif voice_leading is False or voice_leading is None:
        voice_leading = None
    elif isinstance(voice_leading, Mapping):
        voice_leading = {str(k): float(v) for k, v in voice_leading.items()}
    else:
        raise CapsuleError(f"voice_leading must be True, False or a dict of penalty weights, not {voice_leading!r}")
    task = GanTask(ds, model_config, update_ratio=update_ratio, sample_every=sample_every, epochs=epochs,
                   recon_weight=recon_weight, voice_leading=voice_leading)
    summary = ds.summary()
    hyper = {
        "model": model_config.to_dict(),
        "training": {"epochs": epochs, "lr": lr, "update_ratio": update_ratio, "batch_size": batch_size, "seed": seed,
                     "max_steps_per_epoch": max_steps_per_epoch, "optimizer": "Adam(betas=(0.5, 0.9))",
                     "loss": f"WGAN-GP (gradient penalty weight {GP_WEIGHT:g}); generator + {recon_weight:g} x "
                             "reconstruction cross entropy"},
        "genre": ds.spec.to_dict(),
        "fold": ds.fold,
        "polyphony": task.polyphony,
        "data": {"samples": f"{len(task.train_samples)} train samples of 4 bars (hop 1 bar), "
                            + (f"{len(task.eval_samples)} validation samples (spread over every validation piece)"
                               if task.eval_split == "validation" else
                               f"{len(task.eval_samples)} *training* samples (the data set has no validation "
                               "pieces)")
                            + " for the per-epoch metrics and the decoder's calibration",
                 "transposition": "random -5..+6 semitones (training only)", "summary": summary},
        "ground_truth": task.ground_truth,
    }
    if voice_leading is not None:
        hyper["voice_leading"] = voice_leading
        hyper["part_ranges"] = part_ranges(ds.spec.tracks[1:])
    dataset_desc = (f"{summary['source']}: {summary['train']['pieces']} train / {summary['validation']['pieces']} "
                    f"validation / {summary['test']['pieces']} test pieces")
    algo_name = "MuseGAN" if algorithm == "musegan" else "U-Net"
    desc = description or f"{algo_name} accompaniment ({', '.join(ds.spec.tracks[1:])}) for a melody, trained on {summary['source']}"
    with training_run(registry, existing, name, "gan", algorithm=algo_name, dataset=dataset_desc,
                      hyperparameters=hyper, description=desc) as run_dir:
        trainer = Trainer(task, config, run_dir, on_epoch_end=on_epoch_end)
        started = time.perf_counter()
        history = trainer.fit(resume=True)
        train_seconds = float(sum(rec.get("seconds", 0.0) for rec in history)) or time.perf_counter() - started
        gen = trainer.modules["generator"].to("cpu").eval()
        registry.save_weights(name, gen.state_dict(), metadata={"model": model_config.to_dict(), "epochs": len(history)})
        last = history[-1]
        metrics: dict[str, Any] = {k: last[k] for k in ("critic_loss", "generator_loss", "wasserstein") if k in last}
        metrics["parameters"] = {"generator": sum(p.numel() for p in gen.parameters()),
                                 "critic": sum(p.numel() for p in trainer.modules["critic"].parameters())}
        hyper["switch_penalty"] = task.switch_penalty
        hyper["pitch_classes_target"] = task.density
        hyper["chord_threshold"] = task.chord_threshold
        hyper["rest_weight"] = task.rest_weight
        hyper["empty_bar_target"] = task.empty_bars
        hyper["chord_share"] = task.chords
        gen.spec, gen.polyphony, gen.name, gen.switch_penalty = ds.spec, task.polyphony, name, task.switch_penalty
        gen.chord_threshold, gen.rest_weight, gen.fold = task.chord_threshold, task.rest_weight, ds.fold
        gen.voice_leading = voice_leading
        if evaluate and len(ds.samples("test")):
            from .evaluate import evaluate_gan

            metrics["test"] = evaluate_gan(gen, "test", dataset=ds)
        hyper["provenance"] = provenance(str(trainer.device), "capsule_lib.techniques.gan.train_gan(...)")
        card = registry.update(name, status="complete", metrics=metrics, training_time_s=round(train_seconds, 1),
                               hyperparameters=hyper)
        final_samples = sorted((run_dir / "samples").glob("epoch_*/sample_1.mid"))
        write_card_files(card, list(history), summary, final_samples[-1] if final_samples else None)
        return registry.get(name)


def _voice_leading_text(hp: dict) -> str:
    """The card's sentence on joint decoding (empty for a model whose tracks are drawn on their own)."""
    vl = hp.get("voice_leading")
    if not vl:
        return "  Each track is drawn on its own."
    ranges = ", ".join(f"{name} {r[0]}-{r[1]}" for name, r in zip(hp["genre"]["tracks"][1:], hp.get("part_ranges") or [])
                       if r)
    return ("  The tracks are drawn *jointly* (capsule_lib.techniques.gan.voicing): the lowest first, then from the "
            "top down, each given the melody and the tracks already drawn, with its probabilities multiplied by "
            "exp(-weight) for a parallel fifth or octave with another voice, a clash (1, 11 or 13 semitones), a crossing "
            "and a note out of its range -- weights " + ", ".join(f"{k} {v:g}" for k, v in vl.items()) + " nats"
            + (f"; ranges (MIDI) {ranges}" if ranges else "") + ".")


def _interval_lines(test: dict) -> list[str]:
    """Card lines: for each failed check, the ground truth's piece-bootstrap interval."""
    from .evaluate import failure_intervals

    rows = failure_intervals(test)
    if not rows:
        return []
    iv = test["ground_truth_interval"]
    return ["", f"How much those ground truths depend on which pieces were held out ({iv['level']:.0%} interval of "
                f"the mean when the {test['n_pieces']} test pieces are resampled with replacement, {iv['draws']} "
                "draws):", ""] + [f"- {r}" for r in rows]


def _cross_validation_lines(card) -> list[str]:
    """The card's cross-validation section (empty until :func:`record_cross_validation`)."""
    cv = (card.metrics or {}).get("cross_validation")
    if not cv:
        return []
    from .evaluate import cross_validation_lines
    from .views import metrics_comparison_table

    command = card.hyperparameters.get("provenance", {}).get("command", "")
    others = [f for f in cv["folds"] if f != 0]
    names = [cv["per_fold"][str(f)]["model"] for f in sorted(cv["folds"])]
    rows = cross_validation_lines(cv)
    train = (f"`{command.replace(' --name ' + card.name, ' --fold K --name ' + card.name + '-fold-K')}` for each K, "
             "then " if command.startswith("capsule train") and f" --name {card.name}" in command else "")
    alone = ("  (Measured before the parts were drawn jointly: every fold's parts were drawn alone, as this model's were "
             "then -- its test evaluation of that time is kept in the card as `test_parts_drawn_alone`; the folds have "
             "not been re-run with joint decoding.)" if cv.get("decoder") == "parts drawn alone" else "")
    return ["", "## Cross-validation", "",
            "One test split of a few pieces says as much about which pieces were held out as about the model." + alone + "  "
            "So the training command above was also run with `--fold K` for "
            f"K = {', '.join(str(f) for f in others)} -- fold K holds out bucket K of the split rule and validates "
            "on bucket K + 1; fold 0 is this model -- and each of those models accompanied the melodies of its own "
            "held-out pieces, none of which it trained on.  Pooled, the held-out melodies are "
            f"{'every piece of the data set' if len(cv['folds']) == 10 else 'the pieces of those folds'} and the "
            "ground truth is their real accompaniment:", "",
            metrics_comparison_table(cv), "", rows[0] + ".", ""] + [f"- {r}" for r in rows[1:]] + [
            "", f"Reproduce: {train}`capsule cross-validate {' '.join(names)} --record`."]


def record_cross_validation(name: str, result: dict, registry=None):
    """Store a :func:`~capsule_lib.techniques.gan.evaluate.cross_validate` result in model ``name``'s
    card (``metrics["cross_validation"]``) and rewrite its README with the section; ``name``
    must be one of the result's models."""
    from ...models import ModelRegistry

    registry = registry if registry is not None else ModelRegistry()
    card = registry.get(name)
    if name not in result.get("models", []):
        raise CapsuleError(f"{name} is not one of the cross-validated models ({', '.join(result.get('models', []))})")
    card = registry.update(name, metrics={**(card.metrics or {}), "cross_validation": result})
    try:
        history = json.loads((card.path / "history.json").read_text(encoding="utf-8"))
        summary = card.hyperparameters["data"]["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CapsuleError(f"model {name}: no training history or data summary to rewrite its card from") from None
    sample = card.path / "sample.mid"
    write_card_files(card, history, summary, sample if sample.is_file() else None)
    return registry.get(name)


def retune_for_joint_decoding(name: str, voice_leading=True, registry=None, progress: bool = False):
    """Give a GAN trained before joint decoding existed the decoder :func:`train_gan` now ends with.

    Exactly what training does after its last epoch, on the generator's own weights (which do
    not change): its validation melodies (the :class:`GanTask` of its card's data set and fold)
    are accompanied with the fixed evaluation noise, each part's decoder settings -- those in
    the card, fitted per part after the last epoch -- are refitted for the joint draw
    (:func:`~capsule_lib.techniques.gan.voicing.calibrate_jointly`), and the test split is
    evaluated again.  The card records the weights (``voice_leading``), the new settings, the
    new ``test`` evaluation, and keeps what came before under ``decoder_retuned`` (the
    per-part settings) and ``metrics["test_parts_drawn_alone"]``; a cross-validation in the
    card was measured with parts drawn alone and says so.  The training history is the run's.
    Returns the updated card.
    """
    from ...models import ModelRegistry
    from .evaluate import evaluate_gan
    from .sample import load_gan
    from .voicing import VOICE_LEADING, calibrate_jointly, part_ranges

    registry = registry if registry is not None else ModelRegistry()
    card = registry.get(name)
    hp = dict(card.hyperparameters or {})
    if hp.get("voice_leading"):
        raise CapsuleError(f"model {name} already draws its parts jointly")
    weights = dict(VOICE_LEADING) if voice_leading is True else {str(k): float(v) for k, v in dict(voice_leading).items()}
    gen = load_gan(name, registry=registry)
    ds = resolve_dataset(gen.spec.name, progress=progress)
    if gen.fold != ds.fold:
        ds = ds.with_fold(gen.fold)
    task = GanTask(ds, GanConfig.from_dict(hp["model"]), voice_leading=weights)
    melodies = task.eval_samples[:, 0]
    raw = generator_output(gen, melodies, EVAL_SEED)
    pen, rest, th = calibrate_jointly(
        raw, np.asarray(melodies, bool), task.polyphony[1:], pitch_classes=task.density[1:],
        empty_bars=task.empty_bars[1:], chords=task.chords[1:], switch_penalty=gen.switch_penalty,
        rest_weight=gen.rest_weight, chord_threshold=gen.chord_threshold, seed=EVAL_SEED, weights=weights,
        ranges=part_ranges(ds.spec.tracks[1:]), drums=list(ds.spec.is_drum[1:]))
    from datetime import datetime, timezone

    hp["decoder_retuned"] = {
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "by": f"capsule_lib.techniques.gan.train.retune_for_joint_decoding({name!r})",
        "parts_drawn_alone": {"switch_penalty": hp.get("switch_penalty"), "rest_weight": hp.get("rest_weight"),
                              "chord_threshold": hp.get("chord_threshold")},
    }
    hp.update({"voice_leading": weights, "part_ranges": part_ranges(ds.spec.tracks[1:]), "switch_penalty": pen,
               "rest_weight": rest, "chord_threshold": th})
    gen.switch_penalty, gen.rest_weight, gen.chord_threshold, gen.voice_leading = pen, rest, th, weights
    metrics = dict(card.metrics or {})
    if "test" in metrics:
        metrics["test_parts_drawn_alone"] = metrics["test"]
    metrics["test"] = evaluate_gan(gen, "test", dataset=ds)
    if "cross_validation" in metrics:
        metrics["cross_validation"] = {**metrics["cross_validation"], "decoder": "parts drawn alone"}
    card = registry.update(name, hyperparameters=hp, metrics=metrics)
    try:
        history = json.loads((card.path / "history.json").read_text(encoding="utf-8"))
        summary = hp["data"]["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CapsuleError(f"model {name}: no training history or data summary to rewrite its card from") from None
    sample = card.path / "sample.mid"
    write_card_files(card, history, summary, sample if sample.is_file() else None)
    return registry.get(name)


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x)) else "n/a"


def write_card_files(card, history: list, summary: dict, sample_midi: Path | None = None) -> None:
    """``README.md``, ``history.json``, ``loss.png``, ``metrics.png`` (and ``sample.mid``) in the card's folder."""
    from .views import plot_gan_loss, plot_metric_curves

    folder: Path = card.path
    atomic_write_text(folder / "history.json", json.dumps(history, indent=1) + "\n")
    hp, m = card.hyperparameters, card.metrics
    plots = []
    try:
        from ...plot import subplots

        fig, ax = subplots(figsize=(8, 3.5), standalone=True)
        plot_gan_loss(history, ax=ax)
        for fname, fig in (("loss.png", fig),
                           ("metrics.png", plot_metric_curves(history, hp["ground_truth"], hp["genre"]["tracks"],
                                                              standalone=True))):
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
            atomic_write_bytes(folder / fname, buf.getvalue())
            plots.append(fname)
    except ImportError:
        pass
    if sample_midi is not None and sample_midi.is_file():
        atomic_write_bytes(folder / "sample.mid", sample_midi.read_bytes())
    tr = hp["training"]
    lines = [
        f"# {card.name} -- {card.algorithm} accompaniment GAN", "",
        card.description, "",
        "## Data and split", "",
        f"- {card.dataset}; {summary['skipped']} unusable and {summary['duplicates']} duplicate pieces dropped.",
        f"- Tracks: {', '.join(hp['genre']['tracks'])} (the first is the melody the generator is given; "
        f"default instruments, General MIDI programs {hp['genre']['programs']}).",
        f"- Split rule: {summary['split_rule']}.",
        f"- Samples: {hp['data']['samples']}; {hp['data']['transposition']}; pitches MIDI "
        f"{summary['pitch_range'][0]}-{summary['pitch_range'][1]}, {summary['sample']}.",
        "- Decoding: each track's line is *sampled* from the generator's note probabilities (forward filtering, "
        "backward sampling in a hidden Markov model of notes and rests whose line changes state with a calibrated "
        "probability per step), plus, where the track's polyphony (per accompaniment track: "
        f"{hp['polyphony'][1:]}, the 99th percentile of simultaneous notes in the training data) is above 1, "
        "further notes above a calibrated threshold.  The decoder's three settings are hyperparameters of the "
        "sampling, tuned as hyperparameters are: after each epoch, on the held-out validation melodies, so that "
        "the accompaniment sampled for them has the statistics of their *real* accompaniment, each computed "
        "exactly as the metric in the test table (per 4-bar sample, then averaged): the change penalty to its "
        f"pitch classes per bar {[round(x, 2) for x in hp.get('pitch_classes_target', [])]} (penalties "
        f"{[round(x, 3) for x in hp.get('switch_penalty', [])]} nats), a weight on resting to its empty bar rate "
        f"{[round(x, 3) for x in hp.get('empty_bar_target', [])]} (weights {hp.get('rest_weight')}), the chord "
        f"threshold to its polyphonic rate {[round(x, 3) for x in hp.get('chord_share', [])]} "
        f"(thresholds {hp.get('chord_threshold')}).  So on validation music those three metrics match by design; "
        "the test table shows how well that carries over to the held-out test pieces, which training never "
        "reads.  Which pitches are played, hence the in-scale ratio and the harmony, come from the "
        "generator." + _voice_leading_text(hp), "",
        "## Hyperparameters", "",
        f"- Network: {json.dumps(hp['model'])}; parameters {json.dumps(m.get('parameters', {}))}.",
        f"- Training: {tr['epochs']} epochs, learning rate {tr['lr']:g}, update ratio {tr['update_ratio']} "
        f"(critic updates per generator update), batch {tr['batch_size']}, seed {tr['seed']}, {tr['optimizer']}, "
        f"{tr['loss']}.",
        f"- Wall-clock training time: {card.training_time_s:.0f} s ({card.training_time_s / 60:.1f} min).", "",
        "## Results", "",
        f"- Last epoch: critic loss {_fmt(m.get('critic_loss'))}, generator loss {_fmt(m.get('generator_loss'))}, "
        f"Wasserstein estimate {_fmt(m.get('wasserstein'))}.",
    ]
    test = m.get("test")
    if test:
        from .views import metrics_comparison_table

        lines += ["", f"Test split ({test['n_samples']} 4-bar samples of {test['n_pieces']} held-out pieces; "
                      "generated = accompaniment written for the real melody, ground truth = the real accompaniment):",
                  "", metrics_comparison_table(test), "",
                  f"Quality bar (each accompaniment track: empty bar rate, pitch classes used, qualified note rate and "
                  f"polyphonic rate within 20 % of the ground truth -- or 0.01 where the ground truth is below 0.05 -- "
                  f"and in-scale ratio within 5 points): **{'passed' if test['quality_bar']['passed'] else 'not passed'}**"
                  + ("" if test["quality_bar"]["passed"] else
                     f" ({'; '.join(test['quality_bar']['failures'][:6])})") + "."]
        lines += _interval_lines(test)
        from .evaluate import real_music_lines

        ref = real_music_lines(test)
        if ref:
            lines += ["", f"The same bar applied to real music -- the real accompaniment of other pieces of the data set "
                          f"in place of the generated one, against the same {test['n_pieces']} test pieces (a check "
                          "that the composers' own music fails measures which pieces were held out, not the model):",
                      ""] + [f"- {r}" for r in ref]
    lines += _cross_validation_lines(card)
    for fname, caption in (("loss.png", "generator and critic loss"), ("metrics.png", "metrics per epoch vs ground truth")):
        if fname in plots:
            lines += ["", f"![{caption}]({fname})"]
    if sample_midi is not None:
        lines += ["", "`sample.mid`: the last epoch's first validation sample (melody + accompaniment)."]
    run = hp.get("provenance")
    if run:
        retuned = hp.get("decoder_retuned")
        lines += ["", "## Provenance", "",
                  f"- Produced by: `{run['command']}`",
                  f"- Machine: {run['machine']}; device {run['device']}; torch {run['torch']}, Python {run['python']}.",
                  f"- Finished: {run['finished']}."]
        if retuned:
            before = retuned["parts_drawn_alone"]
            old_test = (m.get("test_parts_drawn_alone") or {}).get("quality_bar", {})
            lines.append(f"- Decoder retuned for the joint draw ({retuned['finished']}): `{retuned['by']}` -- the same "
                         "weights; the refit training now ends with, on the same validation melodies.  Settings of the "
                         f"parts drawn alone: switch penalties {before['switch_penalty']}, rest weights "
                         f"{before['rest_weight']}, chord thresholds {before['chord_threshold']}"
                         + (f"; their test evaluation (`test_parts_drawn_alone`): quality bar "
                            f"{'passed' if old_test.get('passed') else 'not passed (' + '; '.join(old_test.get('failures', [])) + ')'}"
                            if old_test else "") + ".")
        lines += [f"- `capsule evaluate {card.name} --json` reproduces the test table.",
                  "- A sample model is that folder (`$CAPSULE_HOME/models/NAME/`) copied to `data/models/NAME/`."]
    atomic_write_text(folder / "README.md", "\n".join(lines) + "\n")

