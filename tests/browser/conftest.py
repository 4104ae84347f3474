"""Real-browser test harness: a JupyterLab on 127.0.0.1 driven by Chromium through Playwright.

Fixtures
--------
``lab``          (session) a running JupyterLab; ``lab.url(path)``, ``lab.root`` (its folder),
                 ``lab.notebook(name, cells)`` writes a notebook there.
``browser``      (session) Chromium (Debian's ``/usr/bin/chromium``) via Playwright.
``page``         a fresh page; browser console errors collect in ``page.console_errors``
                 (``browser_helpers.widget_console_errors`` filters them).
``notebook``     ``notebook(name, cells=None, source=None)`` opens a notebook in Lab (written
                 from ``cells`` or copied from ``source``), runs every cell and returns a
                 :class:`OpenNotebook` with ``.page``, ``.run(code)`` -- execute code in *its*
                 kernel and return stdout -- and ``.screenshot(name)``.

The tests need Chromium.  ``make test`` installs it (``CAPSULE_BROWSER_TESTS=1``, as
``.ci/run`` sets); without it they are skipped locally, and fail in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CAPSULE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(os.environ.get("CAPSULE_TEST_ARTIFACTS", REPO / "test-artifacts"))
TIMEOUT_MS = 60_000


def pytest_configure(config):
    config.addinivalue_line("markers", "viewport(width, height): the browser page's size for this test")


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CAPSULE_BROWSER_TESTS") == "1":
        return  # CI: let the tests fail loudly rather than hide a missing browser
    skip = pytest.mark.skip(
        reason=f"Chromium not found at {CHROMIUM} (make test installs it with CAPSULE_BROWSER_TESTS=1)"
    )
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    def __init__(self, root: Path, port: int, token: str, runtime: Path, proc: subprocess.Popen):
        self.root, self.port, self.token, self.runtime, self.proc = root, port, token, runtime, proc

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str):
        with urllib.request.urlopen(self.url(f"api/{path}"), timeout=10) as r:
            return json.loads(r.read())

    def notebook(self, name: str, cells: list[str]) -> Path:
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = self.root / name
        nbformat.write(nb, path)
        return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab_root")
    home = tmp_path_factory.mktemp("lab_capsule_home")
    runtime = tmp_path_factory.mktemp("lab_runtime")
    workspaces = tmp_path_factory.mktemp("lab_workspaces")  # not ~/.jupyter: no tabs restored from other runs
    settings = tmp_path_factory.mktemp("lab_settings")  # no "get news?" toast over the widgets in screenshots
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), uuid.uuid4().hex
    env = {
        **os.environ,
        "CAPSULE_HOME": str(home),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
    }
    env.pop("MPLBACKEND", None)  # notebooks draw inline, as for a learner
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--expose-app-in-browser",
        "--ServerApp.port_retries=0",
        f"--LabApp.workspaces_dir={workspaces}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(root.parent / f"lab-{port}.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    server = Lab(root, port, token, runtime, proc)
    deadline = time.time() + 90
    while True:
        try:
            server.api("status")
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                raise RuntimeError(
                    f"JupyterLab did not start: {(root.parent / f'lab-{port}.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.3)
    yield server
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    # @pytest.mark.viewport(width, height) asks for another size (the studio's pictures want a taller page)
    marker = request.node.get_closest_marker("viewport")
    width, height = marker.args if marker else (1400, 1000)
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.console_errors = []

    def on_console(msg):
        if msg.type == "error":
            pg.console_errors.append(msg.text)

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: pg.console_errors.append(f"pageerror: {exc}"))
    yield pg
    context.close()


class OpenNotebook:
    def __init__(self, lab: Lab, page, path: Path):
        self.lab, self.page, self.path = lab, page, path

    def kernel_id(self) -> str:
        rel = self.path.relative_to(self.lab.root).as_posix()
        deadline = time.time() + 60
        while time.time() < deadline:
            for s in self.lab.api("sessions"):
                if s.get("path") == rel and s.get("kernel"):
                    return s["kernel"]["id"]
            time.sleep(0.3)
        raise AssertionError(f"no kernel session for {rel}")

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code`` in the notebook's own kernel (a second client) and return its stdout."""
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(self.lab.runtime / f"kernel-{self.kernel_id()}.json"))
        client.load_connection_file()
        client.start_channels()
        out: list[str] = []
        errors: list[str] = []

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content["text"])
            elif kind == "error":
                errors.append(f"{content['ename']}: {content['evalue']}")

        try:
            client.wait_for_ready(timeout=timeout)
            client.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
        finally:
            client.stop_channels()
        if errors:
            raise AssertionError("kernel error: " + "; ".join(errors))
        return "".join(out)

    def screenshot(self, name: str, locator=None) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path

    def wait_idle(self, timeout: float = 120) -> None:
        """Wait until every cell has run (no busy kernel indicator, no pending '[*]' prompt)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            busy = self.page.evaluate(
                """() => [...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'))"""
            )
            if not busy:
                state = self.page.evaluate(
                    """() => { const w = window.jupyterapp.shell.currentWidget;
                               const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                               return k ? k.status : 'none'; }"""
                )
                if state == "idle":
                    return
            time.sleep(0.25)
        raise AssertionError("the notebook did not finish running")


@pytest.fixture
def notebook(lab, page):
    def open_notebook(name: str, cells: list[str] | None = None, source: Path | None = None, app: str = "lab"):
        if source is not None:
            path = lab.root / name
            shutil.copy(source, path)
        else:
            path = lab.notebook(name, cells or [])
        if app == "lab":
            page.goto(lab.url(f"lab/tree/{name}?reset"))
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                timeout=TIMEOUT_MS,
            )
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            nb = OpenNotebook(lab, page, path)
            time.sleep(0.5)
            nb.wait_idle()
            return nb
        # Jupyter Notebook 7
        page.goto(lab.url(f"notebooks/{name}"))
        page.wait_for_selector(".jp-Notebook", timeout=TIMEOUT_MS)
        nb = OpenNotebook(lab, page, path)
        nb.kernel_id()
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator, #jp-Notebook-ExecutionIndicator, "
            ".jp-Toolbar-kernelStatus') !== null",
            timeout=TIMEOUT_MS,
        )
        return nb

    return open_notebook
