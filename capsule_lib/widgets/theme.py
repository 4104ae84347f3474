"""The widgets' one look: ``static/theme.css`` joined to each widget's own style sheet.

anywidget puts a widget's ``_css`` into the page when the widget is shown, in JupyterLab,
Notebook 7 and VS Code alike; every widget of this package starts its ``_css`` with the
theme, so whichever is shown first styles the ipywidgets around it too (the panels' and
the studio's roots carry the class ``capsule-ui``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC", "themed_css", "ROOT_CLASS"]

STATIC = Path(__file__).parent / "static"
#: The class every widget root carries; the theme's rules are scoped under it.
ROOT_CLASS = "capsule-ui"


def themed_css(*names: str) -> str:
    """The theme followed by ``static/<name>`` for each name."""
    return "\n".join((STATIC / name).read_text(encoding="utf-8") for name in ("theme.css", *names))
