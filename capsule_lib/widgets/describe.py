"""Compositions in words for the widgets: a result line, a list row and the lineage tree.

A student should read "“Ode to Joy – AR-CNN 2”, made by AR-CNN with arcnn-bach from
“Ode to Joy – AR-CNN 1”", never a raw id.  These functions are pure (records in, text
out), so they are tested without a browser.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

__all__ = [
    "technique_title",
    "composition_line",
    "composition_row",
    "lineage_forest",
    "family",
    "result_title",
    "KIND_TITLES",
]

#: How the studio names what made a composition, beyond the three techniques.
KIND_TITLES = {
    "sample": "sample melody",
    "recording": "recording",
    "import": "imported file",
    "edit": "edit",
    "arrange": "arrangement",
}


def technique_title(technique: str) -> str:
    """``"arcnn"`` -> ``"AR-CNN"``; ``"edit"`` -> ``"edit"``; anything else as it is."""
    from ..techniques.spec import technique_names, technique_spec

    if technique in technique_names():
        return technique_spec(technique).title
    return KIND_TITLES.get(technique, technique)


def result_title(base: str, technique: str, count: int) -> str:
    """The title of a studio result: ``"Ode to Joy – AR-CNN 2"`` (the count-th of its kind)."""
    return f"{base} – {technique_title(technique)} {count}"


def composition_line(comp, parent=None, *, as_html: bool = False) -> str:
    """One sentence naming ``comp``: its title, what made it (technique and model) and its parent's title.

    ``parent`` is the parent's record (None when it has none or it was deleted), e.g.
    "“Ode to Joy – AR-CNN 2”, made by AR-CNN with arcnn-bach from “Ode to Joy – AR-CNN 1”".
    """
    esc = html.escape if as_html else (lambda s: s)
    q = (lambda s: f"<q>{html.escape(s)}</q>") if as_html else (lambda s: f"“{s}”")
    source = q(parent.title) if parent is not None else ("a deleted composition" if comp.parent else "")
    kind = comp.technique
    if kind == "edit":
        made = f"your edit of {source}" if source else "an edited melody"
    elif kind == "arrange":
        made = f"{source} with a new tempo, pitch or instruments" if source else "a new arrangement"
    elif kind in ("sample", "recording", "import") and not source:
        made = {"sample": "a sample melody", "recording": "your recording", "import": "an imported file"}[kind]
    else:
        made = f"made by {esc(technique_title(kind))}" + (f" with {esc(comp.model)}" if comp.model else "")
        if source:
            made += f" from {source}"
    return f"{q(comp.title)}, {made}"


def composition_row(comp, parent=None) -> dict:
    """A row of "My compositions": title, technique, model, parent's title, user tags, id."""
    tags = {k: v for k, v in comp.tags.items() if not k.lower().startswith("capsule:")}
    return {
        "id": comp.id,
        "title": comp.title,
        "technique": technique_title(comp.technique),
        "model": comp.model or "",
        "parent": parent.title if parent is not None else ("(deleted)" if comp.parent else ""),
        "parent_id": comp.parent or "",
        "tags": ", ".join(f"{k}={v}" if v else k for k, v in tags.items()),
        "created": comp.created[:16].replace("T", " "),
    }


def lineage_forest(comps: Iterable) -> list[tuple]:
    """The compositions as trees of ``(comp, [children...])``, oldest first at each level.

    A composition whose parent is not among ``comps`` (deleted) is a root.
    """
    comps = list(comps)
    ids = {c.id for c in comps}
    children: dict[str | None, list] = {}
    for c in comps:
        children.setdefault(c.parent if c.parent in ids else None, []).append(c)

    def tree(c, seen):
        if c.id in seen:  # a damaged store could hold a cycle; never loop
            return (c, [])
        return (c, [tree(k, seen | {c.id}) for k in sorted(children.get(c.id, []), key=_order)])

    return [tree(c, frozenset()) for c in sorted(children.get(None, []), key=_order)]


def family(forest: list[tuple], ref: str) -> tuple | None:
    """The tree of ``forest`` that holds composition ``ref`` (its whole family), or None."""

    def holds(node):
        return node[0].id == ref or any(holds(k) for k in node[1])

    return next((root for root in forest if holds(root)), None)


def _order(c):
    return (c.created, c.id)
