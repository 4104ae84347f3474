"""The schema of a model card's JSON: every field's type and range, checked on import and on load.

A model card (``model.json``) may come from an archive someone sent: it is untrusted
data that later decides how big a network is built.  So, before a card is used:

* **As JSON** (:func:`parse_card_json`): at most ``MAX_CARD_BYTES``, nested at most
  ``MAX_DEPTH`` deep, at most ``MAX_NODES`` values, text of at most ``MAX_TEXT``
  characters, finite numbers only (no ``NaN``/``Infinity``).
* **Per technique** (:func:`check_hyperparameters`): the fields the code reads --
  ``hyperparameters.model`` (the network's shape) for every technique, and the GAN's
  track layout and decoder settings -- have the right types and ranges.  The ranges
  match the config classes (``ArcnnConfig``, ``GanConfig``, ``TransformerConfig``), which
  check them again when a network is built; a test keeps the two in step.  Fields the
  code does not read (training notes, provenance, evaluation results) and fields a
  newer version may add are free, within the JSON bounds above.

Ranges bound what a network may cost, but a card could still pair a large shape with
small weights; :func:`capsule_lib.models.load_network` therefore compares the shape the
card asks for with the weights file's own tensor shapes before anything is allocated.

This module imports no torch, so listing models stays fast.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

from .errors import CapsuleError

__all__ = [
    "parse_card_json",
    "check_json",
    "check_hyperparameters",
    "MODEL_FIELDS",
    "MAX_CARD_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_TEXT",
    "MAX_GAN_TRACKS",
]

#: Largest ``model.json`` (or other JSON file of a model, such as ``history.json``) read;
#: the shipped ones are 2-62 KB.
MAX_CARD_BYTES = 4 * 1024 * 1024
#: Deepest nesting of lists and objects in a card (the shipped cards nest 6 deep).
MAX_DEPTH = 32
#: Most values (numbers, texts, lists, objects) in a card.
MAX_NODES = 200_000
#: Longest text in a card, in characters.
MAX_TEXT = 100_000
#: Most tracks a GAN may write (the melody included).
MAX_GAN_TRACKS = 16

Check = Callable[[Any, str], None]


def _fail(where: str, what: str) -> CapsuleError:
    return CapsuleError(f"model card field {where} {what}")


def _int(lo: int, hi: int) -> Check:
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, Integral) or not lo <= value <= hi:
            raise _fail(where, f"must be a whole number {lo}-{hi}, not {_short(value)}")

    return check


def _number(lo: float = -math.inf, hi: float = math.inf) -> Check:
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not lo <= value <= hi:
            bounds = "" if (lo, hi) == (-math.inf, math.inf) else f" {lo:g}-{hi:g}"
            raise _fail(where, f"must be a finite number{bounds}, not {_short(value)}")

    return check


def _text(max_len: int = 256) -> Check:
    def check(value, where):
        if not isinstance(value, str) or len(value) > max_len:
            raise _fail(where, f"must be text of at most {max_len} characters, not {_short(value)}")

    return check


def _choice(*options: str) -> Check:
    def check(value, where):
        if value not in options:
            raise _fail(where, f"must be one of {', '.join(options)}, not {_short(value)}")

    return check


def _bool(value, where):
    if not isinstance(value, bool):
        raise _fail(where, f"must be true or false, not {_short(value)}")


def _list(item: Check, min_len: int = 0, max_len: int = MAX_GAN_TRACKS) -> Check:
    def check(value, where):
        if not isinstance(value, list) or not min_len <= len(value) <= max_len:
            raise _fail(where, f"must be a list of {min_len}-{max_len} items, not {_short(value)}")
        for i, x in enumerate(value):
            item(x, f"{where}[{i}]")

    return check


def _object(fields: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A JSON object whose listed fields (when present) pass their checks; other keys are free."""

    def check(value, where):
        if not isinstance(value, dict):
            raise _fail(where, f"must be an object, not {_short(value)}")
        for key in required:
            if key not in value:
                raise _fail(where, f"has no {key!r}")
        for key, field_check in fields.items():
            if key in value:
                field_check(value[key], f"{where}.{key}")

    return check


def _short(value) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else type(value).__name__
    return text if len(text) <= 40 else text[:40] + "…"


#: The network shape of each technique: ``hyperparameters.model`` (ranges as in the config classes).
MODEL_FIELDS: dict[str, dict[str, Check]] = {
    "arcnn": {"base_channels": _int(4, 64), "depth": _int(1, 4)},
    "gan": {
        "algorithm": _choice("musegan", "unet"),
        "n_tracks": _int(2, MAX_GAN_TRACKS),
        "z_dim": _int(1, 1024),
        "width": _int(1, 512),
        "critic_width": _int(1, 512),
    },
    "transformer": {
        "vocab_size": _int(2, 4096),
        "d_model": _int(8, 1024),
        "n_heads": _int(1, 16),
        "n_layers": _int(1, 24),
        "d_ff": _int(8, 8192),
        "segment_len": _int(1, 4096),
        "mem_len": _int(1, 4096),
        "dropout": _number(0, 0.9),
    },
}

_per_track = _list(_number())
_GAN_FIELDS: dict[str, Check] = {
    "genre": _object(
        {
            "name": _text(),
            "description": _text(4096),
            "tracks": _list(_text(64), 2),
            "programs": _list(_int(0, 127), 2),
            "is_drum": _list(_bool, 2),
        },
        required=("name", "tracks", "programs"),
    ),
    "polyphony": _list(_int(1, 16), 2),
    # The decoder settings: one per accompaniment track (or none: the defaults).
    "switch_penalty": _per_track,
    "chord_threshold": _per_track,
    "rest_weight": _list(_number(0)),
    "pitch_classes_target": _per_track,
    "empty_bar_target": _per_track,
    "chord_share": _per_track,
    "fold": _int(0, 9),
}


_DECODER_SETTINGS = ("switch_penalty", "chord_threshold", "rest_weight")


def check_hyperparameters(technique: str, hyperparameters: Mapping) -> None:
    """Check the fields of ``hyperparameters`` the code of ``technique`` reads.

    Raises
    ------
    CapsuleError
        Naming the first field of the wrong type or out of range.
    """
    fields: dict[str, Check] = {"model": _object(MODEL_FIELDS.get(technique, {}))}
    if technique == "gan":
        fields.update(_GAN_FIELDS)
    _object(fields)(hyperparameters, "hyperparameters")
    if technique == "gan":
        _check_gan_layout(hyperparameters)


def _check_gan_layout(hp: Mapping) -> None:
    """The per-track lists agree with each other and with the network's track count."""
    genre = hp.get("genre")
    n = (hp.get("model") or {}).get("n_tracks")
    if genre is not None:
        lengths = {len(genre[k]) for k in ("tracks", "programs", "is_drum") if k in genre}
        if len(lengths) > 1:
            raise _fail("hyperparameters.genre", "has tracks, programs and drum flags of different lengths")
        if n is not None and lengths != {n}:
            raise _fail("hyperparameters.genre.tracks", f"must name the network's {n} tracks")
        if genre.get("is_drum") and genre["is_drum"][0]:
            raise _fail("hyperparameters.genre.is_drum", "marks the melody (the first track) as drums")
    if n is not None and "polyphony" in hp and len(hp["polyphony"]) != n:
        raise _fail("hyperparameters.polyphony", f"must give one value per track ({n})")
    for key in _DECODER_SETTINGS:
        if n is not None and hp.get(key) and len(hp[key]) != n - 1:
            raise _fail(f"hyperparameters.{key}", f"must give one value per accompaniment track ({n - 1})")


# --------------------------------------------------------------------------------------- JSON


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number a model card may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number for a model card")
    return value


def parse_card_json(data: bytes | str, label: str) -> Any:
    """Parse a card's JSON text within the bounds above; CapsuleError names ``label`` if it is not."""
    if len(data) > MAX_CARD_BYTES:
        raise CapsuleError(
            f"{label} is {len(data) / 2**20:.1f} MB; a model's JSON files hold at most {MAX_CARD_BYTES // 2**20} MB"
        )
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise CapsuleError(f"{label} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CapsuleError(f"{label} is not valid JSON ({exc})") from None
    check_json(value, label)
    return value


def check_json(value: Any, label: str) -> None:
    """Refuse JSON data nested deeper than ``MAX_DEPTH``, with more than ``MAX_NODES`` values,
    text longer than ``MAX_TEXT`` or non-finite numbers (iteratively: no recursion to exhaust)."""
    stack = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise CapsuleError(f"{label} holds more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise CapsuleError(f"{label} is nested too deeply (at most {MAX_DEPTH} levels)")
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str) or len(k) > MAX_TEXT:
                    raise CapsuleError(f"{label} has a key that is not short text")
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            if len(item) > MAX_TEXT:
                raise CapsuleError(f"{label} holds a text of {len(item)} characters (at most {MAX_TEXT})")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise CapsuleError(f"{label} holds the number {item}; only finite numbers are allowed")
        elif not (item is None or isinstance(item, (bool, int))):
            raise CapsuleError(f"{label} holds a {type(item).__name__}, which is not JSON data")
