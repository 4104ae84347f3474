"""What the studio remembers: the input, every version made from it, and the steps that make the next one.

:class:`StudioSession` is the studio without a screen.  Each step -- a technique run, an
edit of the notes, a change of tempo, pitch or instruments -- works on the current
version, saves a new composition whose parent is that version's composition, and becomes
the current version; going back to an earlier version makes *it* the one the next step
reads, so the lineage in the store is always what happened.  The input is saved as a
composition (a sample melody, a recording, an imported file) the first time a step needs
a parent, so browsing samples leaves nothing behind.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from ..errors import CapsuleError
from ..score import Score
from ..techniques.spec import technique as technique_record
from ..techniques.spec import technique_spec
from .describe import result_title

__all__ = ["StudioSession", "Version"]

#: Where the input came from -> the composition technique it is saved with.
INPUT_KINDS = ("sample", "recording", "import", "composition", "edit")


@dataclass
class Version:
    """One result of the session.

    Attributes
    ----------
    score : Score
    composition : Composition or None
        Its saved record (None once it was deleted from the store).
    technique : str
        What made it: ``"arcnn"``, ``"gan"``, ``"transformer"``, ``"edit"`` or ``"arrange"``.
    before : Score
        What it was made from (the "before" of before/after).
    base : Score
        The music tempo, pitch and instruments are applied to: the version itself, or for
        an arrangement the version it arranges (so +2 then +3 semitones is +3, not +5).
    arrangement : dict
        For an arrangement, ``{"tempo", "transpose", "instruments"}`` as applied to ``base``.
    """

    score: Score
    composition: object
    technique: str
    before: Score
    base: Score
    arrangement: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.composition.title if self.composition is not None else self.score.title


class StudioSession:
    """The input and its versions; every step saves a composition with the right parent.

    Parameters
    ----------
    store : CompositionStore, optional
        Where compositions are saved (the default store otherwise).
    seed : int, optional
        Seed of the first technique run; each run uses the next one (None: random seeds).
    """

    def __init__(self, store=None, seed: int | None = 0):
        from ..store import CompositionStore

        self.store = store if store is not None else CompositionStore()
        self.seed = seed
        self.runs = 0
        self.input: Score | None = None
        self.input_kind = "sample"
        self.input_composition = None
        self._input_parent: str | None = None
        self.title = ""
        self.versions: list[Version] = []
        self.current: Version | None = None
        self._lock = threading.RLock()

    # -- the input ----------------------------------------------------------------------
    def set_input(self, score: Score, kind: str, *, composition=None, title: str | None = None) -> None:
        """A new input (a sample, a recording, an import, or a saved composition): a fresh chain."""
        if not isinstance(score, Score):
            raise CapsuleError(f"the studio's input must be a Score, not {type(score).__name__}")
        if kind not in INPUT_KINDS:
            raise CapsuleError(f"unknown kind of input {kind!r}")
        if not any(t.notes for t in score.tracks):
            raise CapsuleError("that melody has no notes")
        with self._lock:
            self.title = title or (composition.title if composition is not None else "") or score.title or "my melody"
            self.input = score.replace(title=self.title)
            self.input_kind = kind
            self.input_composition = composition
            self._input_parent = None
            self.versions = []
            self.current = None

    def edit_input(self, score: Score) -> None:
        """The input's notes edited by hand: saved (as an edit of the input) when first used."""
        with self._lock:
            self._need_input()
            if score == self.input:
                return
            parent = self.input_composition.id if self.input_composition is not None else self._input_parent
            self.input = score.replace(title=self.title)
            self.input_kind, self.input_composition, self._input_parent = "edit", None, parent

    def input_parent_id(self) -> str | None:
        """The input's composition id, saving the input first if it is not saved yet."""
        with self._lock:
            self._need_input()
            if self.input_composition is None:
                technique = "edit" if self.input_kind == "edit" else self.input_kind
                self.input_composition = self.store.add(
                    self.input, technique=technique, title=self.title, parent=self._input_parent
                )
            return self.input_composition.id

    # -- what the next step reads ---------------------------------------------------------
    @property
    def source(self) -> Score:
        """The music the next step works on: the current version, else the input."""
        self._need_input()
        return self.current.score if self.current is not None else self.input

    def parent_id(self) -> str | None:
        """The composition the next step's result is made from."""
        if self.current is not None:
            return self.current.composition.id if self.current.composition is not None else None
        return self.input_parent_id()

    # -- steps ----------------------------------------------------------------------------
    def run(self, technique: str, model: str | None = None, parameters: dict | None = None) -> Version:
        """Run ``technique`` on the current music with ``parameters`` (checked against its definition)."""
        spec = technique_spec(technique)
        params = spec.check(parameters or {})
        model = model or spec.default_model
        with self._lock:
            source, parent = self.source, self.parent_id()
            # A seed is always chosen here, so it is recorded even when the studio draws random ones.
            seed = secrets.randbelow(2**31) if self.seed is None else self.seed + self.runs
            self.runs += 1
            title = result_title(self.title, technique, self._count(technique) + 1)
        record = technique_record(technique)
        # A technique that writes the whole accompaniment (the GAN) reads the melody alone: "again" replaces, never stacks.
        given = source.replace(tracks=source.tracks[:1]) if record.melody_only else source
        result = record.run(given, model=model, seed=seed, save=False, **params)
        # Saved here, not by the library function, so a studio given its own store keeps everything there.
        comp = self.store.add(
            result,
            technique=technique,
            title=title,
            model=model,
            parent=parent,
            parameters={**params, "seed": seed, "notes_before": len(source.notes), "notes_after": len(result.notes)},
        )
        return self._add(Version(result, comp, technique, source, result))

    def edit_output(self, score: Score) -> Version:
        """The current version's notes edited by hand, saved as a new version."""
        with self._lock:
            current = self._need_current("edit")
            if score == current.score:
                raise CapsuleError("no change to save: edit a note first")
            comp = self.store.add(
                score,
                technique="edit",
                parent=self.parent_id(),
                title=result_title(self.title, "edit", self._count("edit") + 1),
                parameters={"notes_before": len(current.score.notes), "notes_after": len(score.notes)},
            )
            return self._add(Version(score, comp, "edit", current.score, score))

    def arrangement_defaults(self) -> dict:
        """Tempo, transposition and instruments of the current version's base, as the arrange form shows them."""
        from ..edit import MAX_TEMPO, MIN_TEMPO

        current = self._need_current("arrange")
        base = current.base
        tempo = int(round(min(MAX_TEMPO, max(MIN_TEMPO, base.tempo))))
        defaults = {
            "tempo": tempo,
            "transpose": 0,
            "instruments": {i: t.program for i, t in enumerate(base.tracks) if not t.is_drum},
        }
        return {**defaults, **current.arrangement} if current.technique == "arrange" else defaults

    def arrange(
        self, *, tempo: int | None = None, transpose: int = 0, instruments: dict | None = None
    ) -> Version | None:
        """A new version: the current base at ``tempo`` bpm, moved ``transpose`` semitones, with ``instruments``.

        ``instruments`` maps a track index to a General MIDI program.  Settings are always
        applied to the base (the last version a technique or an edit made), so they never
        pile up.  Settings that give the current music again save nothing (None).
        """
        from ..edit import set_instrument, set_tempo
        from ..edit import transpose as shift

        with self._lock:
            current = self._need_current("arrange")
            base = current.base
            score = base
            if tempo is not None and int(tempo) != int(round(base.tempo)):
                score = set_tempo(score, tempo)
            if transpose:
                score = shift(score, transpose)
            for index, program in (instruments or {}).items():
                index = int(index)
                if score.tracks[index].program != program:
                    score = set_instrument(score, index, program)
            if score == current.score:
                return None
            arrangement = {
                "tempo": int(round(score.tempo)),
                "transpose": int(transpose),
                "instruments": {int(i): int(p) for i, p in (instruments or {}).items()},
            }
            names = {str(i): base.tracks[int(i)].name or f"track {int(i) + 1}" for i in arrangement["instruments"]}
            comp = self.store.add(
                score,
                technique="arrange",
                parent=self.parent_id(),
                title=result_title(self.title, "arrange", self._count("arrange") + 1),
                parameters={
                    "tempo": arrangement["tempo"],
                    "transpose": arrangement["transpose"],
                    "instruments": {names[str(i)]: p for i, p in arrangement["instruments"].items()},
                },
            )
            return self._add(Version(score, comp, "arrange", current.score, base, arrangement))

    def go_back(self, index: int) -> Version:
        """Make version ``index`` (0 = the first result) the current one: the next step reads it."""
        with self._lock:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.versions):
                raise CapsuleError(f"no version {index!r} to go back to: there are {len(self.versions)}")
            self.current = self.versions[index]
            return self.current

    def forget(self, composition_id: str) -> None:
        """A composition was deleted from the store: versions keep their music but no longer point to it."""
        with self._lock:
            if self.input_composition is not None and self.input_composition.id == composition_id:
                self.input_composition = None
                self.input_kind = "edit" if self.input_kind == "composition" else self.input_kind
            for v in self.versions:
                if v.composition is not None and v.composition.id == composition_id:
                    v.composition = None

    def renamed(self, composition) -> None:
        """A composition was renamed: versions holding it show the new title."""
        with self._lock:
            if self.input_composition is not None and self.input_composition.id == composition.id:
                self.input_composition = composition
            for v in self.versions:
                if v.composition is not None and v.composition.id == composition.id:
                    v.composition = composition

    # -- internals ------------------------------------------------------------------------
    def _add(self, version: Version) -> Version:
        with self._lock:
            self.versions.append(version)
            self.current = version
            return version

    def _count(self, technique: str) -> int:
        return sum(v.technique == technique for v in self.versions)

    def _need_input(self) -> None:
        if self.input is None:
            raise CapsuleError("choose a melody first: a sample, a recording or a MIDI file")

    def _need_current(self, action: str) -> Version:
        if self.current is None:
            raise CapsuleError(f"nothing to {action} yet: run a technique first")
        return self.current
