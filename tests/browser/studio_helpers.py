"""Helpers for the studio's browser tests: open it, drive sliders with the mouse, wait for steps, take pictures."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from browser_helpers import kernel_json

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
ARTIFACTS = Path(os.environ.get("CAPSULE_TEST_ARTIFACTS", REPO / "test-artifacts"))

# A notebook whose one cell is the studio, as notebook 00 opens with it -- with a store of its own, so
# the compositions other tests made in the same JupyterLab do not show up in its list.
STUDIO_CELL = (
    "import tempfile\nimport capsule_lib as cl\n"
    "studio = cl.Studio(seed=1, store=cl.CompositionStore(tempfile.mkdtemp()))\nstudio"
)

# The focusable controls of a subtree, in document order (what Tab should visit).  One radio per group.
FOCUSABLE = """(root) => {
  const sel = 'button, input, select, textarea, audio[controls], [tabindex]';
  const seen = new Set();
  return [...root.querySelectorAll(sel)].filter((e) => {
    if (e.disabled || e.getAttribute('tabindex') === '-1' || e.type === 'hidden') return false;
    if (e.closest('[hidden]') || e.closest('[style*="display: none"]')) return false;
    const r = e.getBoundingClientRect(), cs = getComputedStyle(e);
    if ((r.width === 0 && r.height === 0) || cs.visibility === 'hidden') return false;
    if (e.type === 'radio') {
      if (seen.has(e.name)) return false;
      const group = [...root.querySelectorAll(`input[type=radio][name="${e.name}"]`)];
      const pick = group.find((x) => x.checked) || group[0];
      seen.add(e.name);
      return pick === e;
    }
    return true;
  });
}"""


def wait_for(nb, expr: str, timeout: float = 150, poll: float = 0.4):
    """Poll ``expr`` in the kernel until it is truthy; return it (fail at the deadline)."""
    deadline = time.time() + timeout
    while True:
        got = kernel_json(nb, expr)
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"{expr} still {got!r} after {timeout} s")
        time.sleep(poll)


def wait_versions(nb, n: int, timeout: float = 150) -> dict:
    """Wait for the studio's n-th version and the end of its job; return its composition record."""
    wait_for(nb, f"len(studio.session.versions) >= {n} and not studio.busy", timeout)
    problem = kernel_json(nb, "studio.status.level == 'error' and studio.status.message")
    assert not problem, problem
    return kernel_json(nb, f"studio.session.versions[{n - 1}].composition.to_dict()")


def click_range(page, slider, fraction: float) -> None:
    """Click a range input at ``fraction`` of its track, as a person would with the mouse."""
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + 8 + fraction * (box["width"] - 16), box["y"] + box["height"] / 2)


def shoot(locator, name: str) -> Path:
    """Screenshot ``locator`` into test-artifacts/; with CAPSULE_DOCS_SCREENSHOTS=1 also a small PNG in docs/."""
    locator.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    data = locator.screenshot(path=str(path))
    if os.environ.get("CAPSULE_DOCS_SCREENSHOTS") == "1":
        from PIL import Image

        # 128 colours, full size: crisp grid lines, about 100 kB for all the pictures together
        image = Image.open(io.BytesIO(data)).convert("RGB")
        DOCS.mkdir(exist_ok=True)
        image.quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(DOCS / f"{name}.png", optimize=True)
    return path
