"""Extending a melody with the Transformer: next-token filtering, generation and :func:`extend`.

Choosing the next token
    The model's logits are divided by the **creative risk** (the temperature: above 1
    flattens the distribution, below 1 sharpens it), turned into probabilities, then
    filtered by the **sampling technique** and renormalised:

    * ``"topk"`` keeps the ``round(threshold x 310)`` most likely tokens (0.80 -> 248);
    * ``"nucleus"`` keeps the most likely tokens while their cumulative probability
      stays within the threshold -- the threshold is the *maximum allowable* cumulative
      sum (the console's definition: ``[0.4, 0.3, 0.2, 0.05, 0.05]`` with 0.96 keeps the
      first four, whose sum 0.95 does not exceed 0.96).  The most likely token is always
      kept;
    * ``"random"`` keeps everything (the threshold is ignored).

    PAD and START are never generated.  One uniform random number per token picks from
    the filtered distribution (inverse CDF), so the same seed gives the same tokens.

Generation with and without the cache
    :func:`generate` reads the prompt in segments of ``segment_len`` tokens to build the
    model's memory, then feeds one token at a time with the memory: each new token
    costs one step.  ``use_cache=False`` instead re-runs the model on the last
    :func:`~capsule_lib.techniques.transformer.model.context_tokens` tokens for every new
    token (what the cache saves; for benchmarks).  Both see exactly the same context --
    the model's attention span is fixed at ``mem_len`` tokens per layer -- so their
    logits agree to float rounding and, drawing the same random numbers, they choose the
    same tokens.

:func:`extend`
    The prompt is the last ``input_duration`` seconds of the input's tokens; the model
    generates ``extension_duration`` seconds of events (time shifts summed); they are
    decoded at the tempo in force at the input's end and its resolution.  Then notes
    longer than ``max_note_length`` seconds are shortened to it, and silences longer
    than ``max_rest`` seconds (including the one between the input's end and the first
    new note) are shortened to it by moving everything after them earlier, so the
    extension may come out shorter than requested.  The extension is appended after the
    input's end, **in the melody track** (``track``, default 0) -- the input's notes
    and every other track are returned unchanged.

Parameter ranges (anything else raises :class:`~capsule_lib.errors.CapsuleError`)
    ========================  ============================  =================
    parameter                 range                         default
    ========================  ============================  =================
    ``sampling``              "topk", "nucleus", "random"   "topk"
    ``threshold``             0.1 .. 0.99                   0.8
    ``creative_risk``         0.1 .. 4                      1.0
    ``input_duration``        > 0 .. 600 seconds            10.0
    ``extension_duration``    > 0 .. 300 seconds            30.0
    ``max_rest``              > 0 .. 60 seconds             2.0
    ``max_note_length``       > 0 .. 60 seconds             2.0
    ``seed``                  None or an integer 0 .. 2**63 - 1
    ========================  ============================  =================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from ...errors import CapsuleError
from ...score import Note, Score
from .._common import finish_inference, progress_bar, resolve_model, start_inference
from . import tokens as tok
from .params import SPEC

__all__ = [
    "filter_topk",
    "filter_nucleus",
    "next_token_probabilities",
    "generate",
    "extend",
    "DEFAULTS",
    "RANGES",
    "SAMPLING_TECHNIQUES",
    "MAX_TOKENS_PER_SECOND",
]

SAMPLING_TECHNIQUES = SPEC["sampling"].values
#: Defaults and accepted ranges come from the one definition of the parameters (``params.py``).
DEFAULTS = SPEC.defaults()
#: (low, high, low is allowed)
RANGES = {p.name: (p.low, p.high, p.low_inclusive) for p in SPEC.parameters if p.kind == "float"}
#: Generation stops after this many tokens per requested second even if the model
#: emits too few time shifts to reach the duration (a dense piano texture needs ~50).
MAX_TOKENS_PER_SECOND = 250
_MAX_SEED = 2**63 - 1
_NEVER = (tok.PAD, tok.START)


# --------------------------------------------------------------------------- filtering


def _as_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] == 0:
        raise CapsuleError("probabilities must be a non-empty array")
    if not np.all(np.isfinite(p)) or (p < 0).any():
        raise CapsuleError("probabilities must be finite and non-negative")
    if (p.sum(axis=-1) <= 0).any():
        raise CapsuleError("probabilities must not all be zero")
    return p


def _check_fraction(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0 < float(threshold) <= 1:
        raise CapsuleError(f"sampling threshold must be a number in (0, 1], got {threshold!r}")
    return float(threshold)


def _normalise(p: np.ndarray) -> np.ndarray:
    return p / p.sum(axis=-1, keepdims=True)


def filter_topk(probs, threshold: float) -> np.ndarray:
    """Keep the ``k = round(threshold x n)`` most likely of ``n`` tokens, renormalised.

    ``probs`` is an array of probabilities over the last axis (``n`` = its length; 310
    for the model, so 0.80 keeps 248).  ``k`` is at least 1; ties are broken towards
    the lower token id so exactly ``k`` stay.  Returns a new float64 array.
    """
    p = _as_probs(probs)
    t = _check_fraction(threshold)
    n = p.shape[-1]
    k = min(n, max(1, math.floor(t * n + 0.5)))
    order = np.argsort(-p, axis=-1, kind="stable")
    keep = np.zeros(p.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :k], True, axis=-1)
    return _normalise(np.where(keep, p, 0.0))


def filter_nucleus(probs, threshold: float) -> np.ndarray:
    """Keep the most likely tokens whose cumulative probability does not exceed ``threshold``.

    Tokens are ranked from most to least likely; a token stays if the running sum up to
    and including it is at most ``threshold`` (the console's "maximum allowable
    cumulative sum"; ``[0.4, 0.3, 0.2, 0.05, 0.05]`` with 0.96 keeps the first four).
    The most likely token always stays.  ``probs`` need not be normalised.  Returns a
    new float64 array, renormalised.
    """
    p = _as_probs(probs)
    t = _check_fraction(threshold)
    order = np.argsort(-p, axis=-1, kind="stable")
    ranked = np.take_along_axis(_normalise(p), order, axis=-1)
    cumulative = np.cumsum(ranked, axis=-1)
    keep_ranked = cumulative <= t + 1e-9  # 0.4 + 0.3 + 0.2 is 0.9000000000000001
    keep_ranked[..., 0] = True
    keep = np.zeros(p.shape, dtype=bool)
    np.put_along_axis(keep, order, keep_ranked, axis=-1)
    return _normalise(np.where(keep, p, 0.0))


def next_token_probabilities(
    logits,
    sampling: str = "topk",
    threshold: float = 0.8,
    temperature: float = 1.0,
    banned: Sequence[int] = _NEVER,
    weights=None,
) -> np.ndarray:
    """The distribution the next token is drawn from.

    ``softmax(logits / temperature)`` with the ``banned`` token ids removed, multiplied by
    ``weights`` (one per token, e.g. a :class:`~capsule_lib.techniques.transformer.guide.PromptGuide`'s;
    None: all 1), filtered by ``sampling`` (``"topk"``, ``"nucleus"`` or ``"random"``: none)
    and renormalised.
    """
    x = np.asarray(logits, dtype=np.float64).copy()
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, Real)
        or not float(temperature) > 0
        or not math.isfinite(float(temperature))
    ):
        raise CapsuleError(f"temperature (creative risk) must be a positive number, got {temperature!r}")
    if banned:
        x[..., list(banned)] = -np.inf
    x = x / float(temperature)
    x = x - x.max(axis=-1, keepdims=True)
    p = np.exp(x)
    if weights is not None:
        p = p * np.asarray(weights, dtype=np.float64)
    p = p / p.sum(axis=-1, keepdims=True)
    if sampling == "topk":
        return filter_topk(p, threshold)
    if sampling == "nucleus":
        return filter_nucleus(p, threshold)
    if sampling == "random":
        return p
    raise CapsuleError(f"sampling must be one of {', '.join(SAMPLING_TECHNIQUES)}, got {sampling!r}")


def _draw(p: np.ndarray, u: float) -> int:
    cdf = np.cumsum(p)
    i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    i = min(i, len(p) - 1)
    while p[i] == 0:  # u landed on a boundary next to a removed token
        i -= 1
    return i


# --------------------------------------------------------------------------- generation


def _shift_ms(token: int) -> int:
    return (token - tok.SHIFT_BASE + 1) * tok.SHIFT_MS if tok.SHIFT_BASE <= token < tok.VELOCITY_BASE else 0


def generate(
    model,
    prompt_tokens: Sequence[int],
    n_seconds: float | None = None,
    max_tokens: int | None = None,
    sampling: str = "topk",
    threshold: float = 0.8,
    temperature: float = 1.0,
    seed: int | None = None,
    *,
    rng: np.random.Generator | None = None,
    use_cache: bool = True,
    progress: bool | None = False,
    guide=None,
) -> list[int]:
    """Continue ``prompt_tokens`` autoregressively; returns the new tokens only.

    Parameters
    ----------
    model : TransformerXL
    prompt_tokens : sequence of int
        The context (empty: ``[START]``).  Only its last ``context_tokens(config)``
        tokens can influence the result, so only those are read.
    n_seconds : float, optional
        Stop once the generated time shifts add up to this many seconds.
    max_tokens : int, optional
        Stop after this many tokens (default with ``n_seconds``:
        ``MAX_TOKENS_PER_SECOND x n_seconds + 16``).  One of the two is required.
    sampling, threshold, temperature
        See :func:`next_token_probabilities`.
    seed : int, optional
        Seeds ``numpy.random.default_rng`` unless ``rng`` is given.
    use_cache : bool
        True: one model step per token, reusing the memory.  False: re-run the model on
        the whole (span-limited) context for every token -- same tokens, much slower.
    progress : bool or None
        A progress bar over the seconds generated (or the tokens, without ``n_seconds``),
        shown once the call has run 2 s; None: where someone watches.
    guide : PromptGuide, optional
        Reweights each next-token distribution and is told every token drawn (see
        :mod:`~capsule_lib.techniques.transformer.guide`).
    """
    import torch

    from ...threads import InferenceThreads
    from .model import context_tokens

    if n_seconds is None and max_tokens is None:
        raise CapsuleError("generate needs n_seconds or max_tokens")
    if max_tokens is None:
        max_tokens = int(math.ceil(MAX_TOKENS_PER_SECOND * float(n_seconds))) + 16
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, Integral) or max_tokens < 1:
        raise CapsuleError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
    target_ms = None if n_seconds is None else float(n_seconds) * 1000.0
    rng = rng if rng is not None else np.random.default_rng(seed)
    config = model.config
    span = context_tokens(config)
    history = [int(t) for t in prompt_tokens] or [tok.START]
    if min(history) < 0 or max(history) >= config.vocab_size:
        raise CapsuleError(f"prompt holds token ids outside 0-{config.vocab_size - 1}")
    history = history[-span:]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[int] = []
    elapsed = 0
    bar = progress_bar(
        round(float(n_seconds), 2) if n_seconds is not None else max_tokens,
        "extending",
        "s" if n_seconds is not None else "token",
        progress,
    )
    try:
        with torch.inference_mode(), InferenceThreads() as threads, bar:

            def run(ids, mems=None):
                return model(torch.tensor([ids], dtype=torch.long, device=device), mems)

            mems = None
            if use_cache:
                for s in range(0, len(history), config.segment_len):
                    logits, mems = run(history[s : s + config.segment_len], mems)
            else:
                logits, _ = run(history)
            while True:
                p = next_token_probabilities(
                    logits[0, -1].double().cpu().numpy(),
                    sampling,
                    threshold,
                    temperature,
                    weights=None if guide is None else guide.weights(),
                )
                token = _draw(p, float(rng.random()))
                if guide is not None:
                    guide.observe(token)
                out.append(token)
                elapsed += _shift_ms(token)
                bar.update(min(_shift_ms(token) / 1000, max(bar.total - bar.n, 0)) if target_ms is not None else 1)
                threads.refresh()
                if len(out) >= max_tokens or (target_ms is not None and elapsed >= target_ms - 1e-6):
                    break
                if use_cache:
                    logits, mems = run([token], mems)
                else:
                    history.append(token)
                    logits, _ = run(history[-span:])
    finally:
        model.train(was_training)
    return out


# --------------------------------------------------------------------------- extend helpers


def _check_real(name: str, value) -> float:
    lo, hi, closed = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise CapsuleError(f"{name} must be a number in {lo:g}-{hi:g}, got {value!r}")
    v = float(value)
    if not (lo <= v if closed else lo < v) or v > hi:
        bound = f"{lo:g}-{hi:g}" if closed else f"more than {lo:g} and at most {hi:g}"
        raise CapsuleError(f"{name} {v:g} is outside {bound}")
    return v


def _shift_tokens(ms: int) -> list[int]:
    """Time-shift tokens adding up to ``ms`` (rounded to 10 ms)."""
    steps = int(round(ms / tok.SHIFT_MS))
    out = []
    while steps > 0:
        n = min(steps, tok.N_SHIFTS)
        out.append(tok.SHIFT_BASE + n - 1)
        steps -= n
    return out


def _is_velocity(t: int) -> bool:
    return tok.VELOCITY_BASE <= t < tok.VELOCITY_BASE + tok.N_VELOCITY_BINS


def prompt_from_tokens(tokens: Sequence[int], seconds: float) -> list[int]:
    """The events of the last ``seconds`` of a token sequence.

    If the cut falls inside the sequence, the prompt starts with the velocity token in
    force there (so the dynamics carry over) and the part of the time shift that
    crosses the cut; START is kept only when the whole sequence fits.
    """
    tokens = [int(t) for t in tokens]
    total = sum(_shift_ms(t) for t in tokens)
    cut = total - seconds * 1000.0
    if cut <= 0:
        return tokens
    t, velocity = 0, None
    for i, token in enumerate(tokens):
        if t >= cut - 1e-6:
            head = [velocity] if velocity is not None else []
            return head + _shift_tokens(t - cut) + tokens[i:]
        t += _shift_ms(token)
        if _is_velocity(token):
            velocity = token
    return [velocity] if velocity is not None else []


def _clean_events(prompt: Sequence[int], generated: Sequence[int], target_ms: float) -> list[int]:
    """The generated events as a well-formed stream that starts at time 0 (the input's end).

    The velocity in force at the prompt's end comes first; note-offs of notes not started
    in the extension are dropped (those notes belong to the input); a repeated note-on
    ends the sounding note first; the last shift is trimmed to the requested length;
    notes still sounding at the end are ended there.
    """
    velocity = next((t for t in reversed(prompt) if _is_velocity(t)), None)
    out = [velocity] if velocity is not None else []
    on: set[int] = set()
    elapsed = 0
    target = int(round(target_ms / tok.SHIFT_MS)) * tok.SHIFT_MS
    for t in generated:
        t = int(t)
        if tok.NOTE_ON_BASE <= t < tok.NOTE_OFF_BASE:
            pitch = t - tok.NOTE_ON_BASE
            if pitch in on:
                out.append(tok.NOTE_OFF_BASE + pitch)
            on.add(pitch)
            out.append(t)
        elif tok.NOTE_OFF_BASE <= t < tok.SHIFT_BASE:
            pitch = t - tok.NOTE_OFF_BASE
            if pitch in on:
                on.discard(pitch)
                out.append(t)
        elif tok.SHIFT_BASE <= t < tok.VELOCITY_BASE:
            ms = min(_shift_ms(t), target - elapsed)
            if ms <= 0:
                break
            out.extend(_shift_tokens(ms))
            elapsed += ms
        elif _is_velocity(t):
            out.append(t)
    if on and elapsed == 0:
        out.extend(_shift_tokens(tok.SHIFT_MS))  # a note needs some length
    out.extend(tok.NOTE_OFF_BASE + p for p in sorted(on))
    return out


def _compress(notes: list[tuple[int, int, int, int]], max_rest: int, max_len: int) -> list[tuple[int, int, int, int]]:
    """Shorten notes to ``max_len`` steps, then silences (from step 0) to ``max_rest`` steps."""
    notes = sorted((s, p, min(d, max_len), v) for s, p, d, v in notes)
    out, shift, covered = [], 0, 0
    for s, p, d, v in notes:
        if s - covered > max_rest:
            shift += s - covered - max_rest
        covered = max(covered, s + d)
        out.append((s - shift, p, d, v))
    return out


def _tempo_at(score: Score, step: int) -> float:
    bpm = score.tempo
    for change_step, change_bpm in score.tempo_changes:
        if change_step > step:
            break
        bpm = change_bpm
    return bpm


def _prompt_notes(score: Score, seconds: float) -> list[Note]:
    """The input's non-drum notes sounding in its last ``seconds`` (what the prompt holds)."""
    cut = score.duration_seconds - seconds
    return [
        n
        for t in score.tracks
        if not t.is_drum
        for n in t.notes
        if tok.PITCH_LOW <= n.pitch <= tok.PITCH_HIGH and score.step_to_seconds(n.end) > cut + 1e-9
    ]


# --------------------------------------------------------------------------- public entry point


def extend(
    score: Score,
    model=SPEC.default_model,
    sampling: str = DEFAULTS["sampling"],
    threshold: float = DEFAULTS["threshold"],
    creative_risk: float = DEFAULTS["creative_risk"],
    input_duration: float = DEFAULTS["input_duration"],
    extension_duration: float = DEFAULTS["extension_duration"],
    max_rest: float = DEFAULTS["max_rest"],
    max_note_length: float = DEFAULTS["max_note_length"],
    seed: int | None = None,
    save: bool = True,
    *,
    follow_prompt: bool = DEFAULTS["follow_prompt"],
    track: int | str = 0,
    parent=None,
    title: str | None = None,
    return_composition: bool = False,
    progress: bool | None = None,
):
    """Extend a melody with the Transformer: up to ``extension_duration`` seconds of new music after it.

    Parameters
    ----------
    score : Score
        The input (any resolution, tempo, time signature, tracks).  All its non-drum
        notes form the prompt.
    model : str or TransformerXL
        A registered Transformer model name (default the sample model
        ``"transformer-classical"``) or a network object.
    sampling : {"topk", "nucleus", "random"}
        How the next token is chosen (case does not matter: "TopK" works).
    threshold : float
        0.1-0.99: for "topk" the fraction of the 310 tokens kept (0.80: 248), for
        "nucleus" the maximum cumulative probability kept; ignored by "random"
        (but still checked).
    creative_risk : float
        Temperature, 0.1-4 (1: the model's own probabilities; higher: more daring).
    input_duration : float
        Seconds from the end of the input used as the prompt (more than 0, at most 600).
    extension_duration : float
        Seconds of music to generate (more than 0, at most 300; the console's 30 by default).
    max_rest : float
        Longer silences in the extension are shortened to this many seconds (more than 0, at most 60).
    max_note_length : float
        Longer notes in the extension are shortened to this many seconds (more than 0, at most 60).
    seed : int, optional
        Same seed, same output (the seed used is saved with the composition).
    save : bool
        Save the result as a composition (technique ``"transformer"``, the model name,
        the parameters including the seed used, and ``parent``).
    follow_prompt : bool
        Keep the extension in the prompt's key and register and away from clashing notes
        (a :class:`~capsule_lib.techniques.transformer.guide.PromptGuide` reweights the
        model's note choices); False: the model's own distribution, as the console sampled.
    track : int or str
        The melody track: the extension's notes are added to it.
    parent : str or Composition, optional
        The composition the input came from.
    title : str, optional
        Title of the saved composition.
    return_composition : bool
        Return ``(score, composition)`` (composition None when ``save`` is False).
    progress : bool or None
        A progress bar over the seconds generated, shown once the call has run 2 s: None
        (default) where someone watches (a terminal, a notebook), True always, False never.

    Returns
    -------
    Score
        The input with the extension appended to the melody track, starting at or
        after the input's end.  Same resolution, tempo and time signature; the input's
        notes are unchanged.

    Raises
    ------
    CapsuleError
        For a non-score, an empty or drum melody, no note in MIDI 21-108, out-of-range
        parameters or an unknown/unfinished model.
    """
    if not isinstance(score, Score):
        raise CapsuleError(f"extend needs a Score, not {type(score).__name__}")
    if not isinstance(sampling, str) or sampling.lower() not in SAMPLING_TECHNIQUES:
        raise CapsuleError(f"sampling must be one of {', '.join(SAMPLING_TECHNIQUES)}, got {sampling!r}")
    sampling = sampling.lower()
    thr = _check_real("threshold", threshold)
    risk = _check_real("creative_risk", creative_risk)
    in_dur = _check_real("input_duration", input_duration)
    ext_dur = _check_real("extension_duration", extension_duration)
    rest = _check_real("max_rest", max_rest)
    note_len = _check_real("max_note_length", max_note_length)
    flags = {"save": save, "return_composition": return_composition, "follow_prompt": follow_prompt}
    used_seed, ti, melody = start_inference("extend", score, seed, _MAX_SEED, track, progress, **flags)
    if not any(n for t in score.tracks if not t.is_drum for n in t.notes):
        raise CapsuleError("the score has no notes; record or load a melody first")
    net = resolve_model(model, "transformer", "a TransformerXL network", needs="config")

    encoded = [int(t) for t in tok.encode(score, start=True)]
    if not any(tok.NOTE_ON_BASE <= t < tok.NOTE_OFF_BASE for t in encoded):
        raise CapsuleError(f"no note of the input lies in the model's pitch range {tok.PITCH_LOW}-{tok.PITCH_HIGH}")
    prompt = prompt_from_tokens(encoded, in_dur)
    guide = None
    if follow_prompt:
        from .guide import guide_from_prompt

        guide = guide_from_prompt(_prompt_notes(score, in_dur))
    generated = generate(
        net,
        prompt,
        n_seconds=ext_dur,
        sampling=sampling,
        threshold=thr,
        temperature=risk,
        seed=used_seed,
        progress=progress,
        guide=guide,
    )
    events = _clean_events(prompt, generated, ext_dur * 1000.0)

    end = score.end
    bpm = _tempo_at(score, end)
    steps_per_second = bpm * score.resolution / 60.0
    decoded = tok.decode(events, tempo=bpm, resolution=score.resolution)
    raw = [(n.start, n.pitch, n.duration, n.velocity) for t in decoded.tracks for n in t.notes]
    # floor: the output never exceeds the limits in seconds; a note keeps at least one step
    max_len_steps = max(1, math.floor(note_len * steps_per_second + 1e-9))
    max_rest_steps = math.floor(rest * steps_per_second + 1e-9)
    new_notes = tuple(Note(end + s, p, d, v) for s, p, d, v in _compress(raw, max_rest_steps, max_len_steps))

    tracks = list(score.tracks)
    tracks[ti] = melody.replace(notes=melody.notes + new_notes)
    result = score.replace(tracks=tuple(tracks))

    parameters = {
        "sampling": sampling,
        "threshold": thr,
        "creative_risk": risk,
        "input_duration": in_dur,
        "extension_duration": ext_dur,
        "max_rest": rest,
        "max_note_length": note_len,
        "seed": used_seed,
        "follow_prompt": follow_prompt,
        "track": ti,
        "prompt_tokens": len(prompt),
        "generated_tokens": len(generated),
        "notes_added": len(new_notes),
    }
    return finish_inference(
        result,
        "transformer",
        net,
        parameters,
        save=save,
        parent=parent,
        title=title,
        return_composition=return_composition,
    )
