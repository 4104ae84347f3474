"""Per-epoch training records and their ``history.json`` file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..errors import CapsuleError

HISTORY_NAME = "history.json"


class History(list):
    """Per-epoch records, oldest first.

    Each record is a dict: ``epoch`` (1-based), the mean of every training metric
    over the epoch's steps, validation metrics prefixed ``val_``, any metrics
    returned by :meth:`TrainingTask.on_sample`, and ``seconds`` (the epoch's wall time).
    """

    def series(self, key: str) -> list[float]:
        """The values of one metric, one per epoch (``nan`` where an epoch lacks it)."""
        return [float(rec.get(key, math.nan)) for rec in self]

    def metrics(self) -> list[str]:
        """Names of the recorded metrics, in first-seen order (without epoch/seconds)."""
        names: dict[str, None] = {}
        for rec in self:
            names.update((k, None) for k in rec if k not in ("epoch", "seconds"))
        return list(names)

    def to_json(self) -> str:
        return json.dumps(list(self), indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        """Read a ``history.json`` (or the one inside a run folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / HISTORY_NAME
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CapsuleError(f"no training history at {path}") from None
        except (OSError, ValueError) as exc:
            raise CapsuleError(f"training history {path} is unreadable: {exc}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise CapsuleError(f"training history {path} is not a list of epoch records")
        return cls(records)
