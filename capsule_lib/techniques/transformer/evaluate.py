"""Evaluating a Transformer-XL: token NLL against a bigram baseline, and what its extensions look like.

``val_nll`` / ``test_nll``
    Mean negative log-likelihood (nats) of each next token of the held-out pieces, read
    in segments with the model's memory (the first :data:`MAX_TOKENS` tokens of each
    piece, so long pieces do not dominate the time).
``baseline_nll``
    The same positions scored by a bigram model ``P(next | previous)`` fitted on the
    training split in the same run (add-``ALPHA`` smoothing).  A model that learned
    nothing about longer context cannot beat it.
``extensions``
    For held-out pieces: the first :data:`PROMPT_SECONDS` seconds as a prompt, extended by
    :data:`EXTENSION_SECONDS` seconds with the default sampling; reported are the
    extension's in-scale ratio against the *prompt's* key (duration-weighted), its
    longest rest and longest note in seconds, and its pitch range in semitones.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import CapsuleError
from .tokens import PAD, START, VOCAB_SIZE

__all__ = ["evaluate_transformer", "bigram_baseline", "token_nll", "extension_stats"]

MAX_TOKENS = 2048
ALPHA = 0.1
PROMPT_SECONDS = 10.0
EXTENSION_SECONDS = 10.0


def bigram_baseline(pieces) -> np.ndarray:
    """``(V, V)`` log-probabilities ``log P(next | previous)`` with add-ALPHA smoothing."""
    counts = np.full((VOCAB_SIZE, VOCAB_SIZE), ALPHA)
    for p in pieces:
        p = np.asarray(p, dtype=np.int64)
        if len(p) > 1:
            np.add.at(counts, (p[:-1], p[1:]), 1.0)
    counts[:, PAD] = 0.0  # PAD is never a real next token
    counts[:, START] = 0.0
    with np.errstate(divide="ignore"):  # log 0 = -inf for PAD and START: never a next token
        return np.log(counts / counts.sum(axis=1, keepdims=True))


def token_nll(
    model, pieces, baseline: np.ndarray, segment: int, max_tokens: int = MAX_TOKENS
) -> tuple[float, float, int]:
    """(model NLL, baseline NLL, tokens scored) over ``pieces``, per token in nats."""
    model.eval()
    total_model, total_base, count = 0.0, 0.0, 0
    with torch.inference_mode():
        for p in pieces:
            p = np.asarray(p[:max_tokens], dtype=np.int64)
            if len(p) < 2:
                continue
            x = torch.from_numpy(p[:-1])[None]
            y = torch.from_numpy(p[1:])[None]
            mems = None
            for lo in range(0, x.shape[1], segment):
                logits, mems = model(x[:, lo : lo + segment], mems)
                total_model += float(F.cross_entropy(logits[0], y[0, lo : lo + segment], reduction="sum"))
            total_base += float(-baseline[p[:-1], p[1:]].sum())
            count += len(p) - 1
    if count == 0:
        raise CapsuleError("no tokens to evaluate")
    return total_model / count, total_base / count, count


def extension_stats(prompt, result) -> dict:
    """In-scale ratio (against the prompt's key), longest rest/note (s) and pitch range of the extension."""
    from ...keys import SCALES, detect_key

    end = prompt.end
    ext = [n for t in result.tracks if not t.is_drum for n in t.notes if n.start >= end]
    if not ext:
        return {
            "notes": 0,
            "in_scale_ratio": math.nan,
            "longest_rest_s": math.nan,
            "longest_note_s": math.nan,
            "pitch_range": math.nan,
        }
    tonic, mode = detect_key(prompt)
    scale = {(tonic + step) % 12 for step in SCALES[mode]}
    weight = sum(n.duration for n in ext)
    in_scale = sum(n.duration for n in ext if n.pitch % 12 in scale) / weight
    spans = sorted((n.start, n.end) for n in ext)
    longest_rest, covered = 0, end
    for s, e in spans:
        longest_rest = max(longest_rest, s - covered)
        covered = max(covered, e)
    sec = (
        result.seconds_per_step()
        if callable(getattr(result, "seconds_per_step", None))
        else 60 / result.tempo / result.resolution
    )
    return {
        "notes": len(ext),
        "in_scale_ratio": in_scale,
        "longest_rest_s": longest_rest * sec,
        "longest_note_s": max(n.duration for n in ext) * sec,
        "pitch_range": max(n.pitch for n in ext) - min(n.pitch for n in ext),
    }


def evaluate_transformer(
    name: str = "transformer-classical",
    *,
    model=None,
    dataset=None,
    limit: int | None = None,
    max_pieces: int | None = None,
    extensions: int = 8,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Validation/test NLL per token beside a bigram baseline, and statistics of extensions.

    Returns
    -------
    dict
        ``val_nll``, ``test_nll``, ``baseline_nll`` (test), ``val_baseline_nll``,
        ``n_tokens`` per split, ``extensions`` (means over held-out prompts), ``model``,
        ``seconds``.
    """
    from ...datasets.classical import build_classical_dataset
    from ...edit import crop_bars
    from .model import load_transformer
    from .sample import extend
    from .tokens import decode

    started = time.perf_counter()
    if model is None:
        model = load_transformer(name)
    ds = dataset if dataset is not None else build_classical_dataset(progress=progress, limit=limit)
    train = ds.tokens("train")
    if not train:
        raise CapsuleError("the train split has no pieces; the baseline cannot be fitted")
    baseline = bigram_baseline(train)
    segment = int(getattr(model.config, "segment_len", None) or getattr(model.config, "tgt_len", None) or 128)
    out = {"model": getattr(model, "name", name), "nll_unit": "nats per token"}
    for split, key in (("validation", "val"), ("test", "test")):
        pieces = ds.tokens(split)
        if max_pieces is not None:
            pieces = pieces[:max_pieces]
        if not pieces:
            raise CapsuleError(f"the {split} split has no pieces in this data set")
        nll, base, n = token_nll(model, pieces, baseline, segment)
        out[f"{key}_nll"], out[f"{key}_baseline_nll"], out[f"n_{key}_tokens"] = round(nll, 5), round(base, 5), n
    out["baseline_nll"] = out.pop("test_baseline_nll")
    rows = []
    for i, p in enumerate(ds.tokens("test")[:extensions]):
        prompt = decode(list(p[:MAX_TOKENS]), tempo=120.0)
        bars = max(1, int(PROMPT_SECONDS * 2 * prompt.resolution) // prompt.steps_per_bar)  # 10 s at 120 bpm
        if prompt.n_bars > bars:
            prompt = crop_bars(prompt, 0, bars)
        if not prompt.notes:
            continue
        try:
            result = extend(prompt, model=model, extension_duration=EXTENSION_SECONDS, seed=seed + i, save=False)
        except CapsuleError:
            continue
        ext = extension_stats(prompt, result)
        ext["prompt_in_scale_ratio"] = _prompt_in_scale(prompt)
        rows.append(ext)
    if rows:
        keys = ["in_scale_ratio", "prompt_in_scale_ratio", "longest_rest_s", "longest_note_s", "pitch_range"]
        out["extensions"] = {"n": len(rows), **{k: round(float(np.nanmean([r[k] for r in rows])), 4) for k in keys}}
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def _prompt_in_scale(prompt) -> float:
    from ...keys import SCALES, detect_key

    tonic, mode = detect_key(prompt)
    scale = {(tonic + step) % 12 for step in SCALES[mode]}
    notes = [n for t in prompt.tracks if not t.is_drum for n in t.notes]
    return sum(n.duration for n in notes if n.pitch % 12 in scale) / max(1, sum(n.duration for n in notes))
