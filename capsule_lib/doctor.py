"""What works on this machine, each problem with its fix: ``capsule doctor`` and ``capsule_lib.doctor()``.

One report for a student or a teacher, in a terminal or as the output of a notebook cell:

* Python, and PyTorch (version, CPU or CUDA build, threads);
* the packages the notebooks import, at the versions they need;
* audio: FluidSynth with its General MIDI SoundFont, or the built-in synthesizer standing in;
* MP3 export (lameenc);
* the widget front end: anywidget in the kernel, JupyterLab / Notebook, and anywidget's
  front-end extension where the Jupyter server can load it (SageMaker runs the server in
  another environment, whose anywidget must match the kernel's);
* hardware MIDI ports ("no MIDI ports" is fine: the virtual keyboard needs none);
* ``$CAPSULE_HOME`` writable;
* the bundled data: sample melodies and sample models.

A check that the notebooks cannot run without is *essential* and fails (``FAIL``); anything
else that is missing is a warning (``warn``) with the fix.  ``capsule doctor`` exits with
status 2 and a one-line summary when an essential check fails, 0 otherwise.

``capsule_lib.doctor`` is both this module and its function: ``capsule_lib.doctor()`` works
whichever was imported first.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import platform
import re
import sys
import tempfile
import types
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from .errors import CapsuleError

__all__ = ["Check", "DoctorReport", "doctor", "ESSENTIAL_PACKAGES", "FEATURE_PACKAGES"]

OK, WARN, FAIL = "ok", "warn", "fail"

MIN_PYTHON = (3, 10)
TESTED_PYTHON = (3, 11)
MIN_TORCH = "2.2"
#: Packages the notebooks import, with the lowest version pyproject.toml accepts (a test keeps them equal).
ESSENTIAL_PACKAGES = {
    "numpy": "1.26",
    "mido": "1.3",
    "pretty_midi": "0.2.10",
    "music21": "9.1",
    "pypianoroll": "1.0.4",
    "safetensors": "0.4",
    "tqdm": "4.66",
    "matplotlib": "3.8",
    "ipython": "8.20",
    "ipywidgets": "8.1",
    "anywidget": "0.9",
}
#: Packages behind one optional feature each, checked with that feature.
FEATURE_PACKAGES = {"pyfluidsynth": ("1.3.3", "audio"), "lameenc": ("1.7", "MP3"), "python-rtmidi": ("1.5", "MIDI")}
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: SageMaker notebook instances: only this folder survives a stop; Jupyter runs in JupyterSystemEnv.
SAGEMAKER_VOLUME = Path("/home/ec2-user/SageMaker")
SAGEMAKER_SERVER_ENV = Path("/home/ec2-user/anaconda3/envs/JupyterSystemEnv")

_LABEL = {OK: "ok", WARN: "warn", FAIL: "FAIL"}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it stands, and what to do about it."""

    name: str
    status: str  # OK, WARN or FAIL
    detail: str
    fix: str = ""


class DoctorReport:
    """The checks, printable as text (``print(report)``, or a notebook cell's output) and as JSON."""

    def __init__(self, checks):
        self.checks = tuple(checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def ok(self) -> bool:
        """True when every essential check passes (warnings allowed)."""
        return not self.failures

    def summary(self) -> str:
        """One line: what failed, or that everything essential works."""
        if self.failures:
            what = "; ".join(f"{c.name}: {c.detail}" for c in self.failures)
            n = len(self.failures)
            return f"{n} essential check{'s' if n > 1 else ''} failed ({what}); the report gives the fixes"
        warned = ", ".join(c.name for c in self.warnings)
        return "everything essential works" + (f" (to improve: {warned})" if warned else "")

    def text(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = ["Composer Capsules doctor"]
        for c in self.checks:
            lines.append(f"{_LABEL[c.status]:<4}  {c.name:<{width}}  {c.detail}")
            if c.fix and c.status != OK:
                lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
        lines.append(f"=> {self.summary()}")
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:  # a notebook cell's last expression shows the report itself
        return self.text()

    def _repr_html_(self) -> str:
        colour = {OK: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e"}
        rows = "".join(
            f"<tr><td style='color:{colour[c.status]};font-weight:bold'>{_LABEL[c.status]}</td>"
            f"<td>{html.escape(c.name)}</td><td>{html.escape(c.detail)}"
            + (f"<br><i>fix:</i> {html.escape(c.fix)}" if c.fix and c.status != OK else "")
            + "</td></tr>"
            for c in self.checks
        )
        return (
            f"<table><caption>Composer Capsules doctor</caption>{rows}</table>"
            f"<p><b>{html.escape(self.summary())}</b></p>"
        )

    def to_dict(self) -> dict:
        return {"ok": self.ok, "summary": self.summary(), "checks": [asdict(c) for c in self.checks]}


# -- helpers ------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    """(2, 13, 0) for '2.13.0+cpu': enough to compare against a lower bound."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(x) for x in match.group(0).split(".")) if match else ()


def _at_least(version: str, minimum: str) -> bool:
    return _release(version) >= _release(minimum)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _on_sagemaker() -> bool:
    return SAGEMAKER_VOLUME.is_dir() and SAGEMAKER_SERVER_ENV.is_dir()


# -- the checks ---------------------------------------------------------------------
def _check_python() -> Check:
    here = platform.python_version()
    if sys.version_info[:2] < MIN_PYTHON:
        return Check(
            "Python",
            FAIL,
            f"{here} is older than {'.'.join(map(str, MIN_PYTHON))}",
            "install Python 3.11 (the version the project is tested with) and run make lab again",
        )
    tested = "" if sys.version_info[:2] == TESTED_PYTHON else f"; tested with {'.'.join(map(str, TESTED_PYTHON))}"
    return Check("Python", OK, f"{here} ({sys.executable}){tested}")


def _check_torch() -> Check:
    reinstall = f"pip install torch --index-url {CPU_INDEX}  (in a checkout: make install)"
    try:
        import torch
    except ImportError as exc:
        return Check("PyTorch", FAIL, f"not importable ({exc})", reinstall)
    version = torch.__version__
    threads = f"{torch.get_num_threads()} threads on {_cpus()} CPUs"
    if not _at_least(version, MIN_TORCH):
        return Check("PyTorch", FAIL, f"{version} is older than {MIN_TORCH}", reinstall)
    cuda = getattr(torch.version, "cuda", None)
    if cuda is None:
        mps = getattr(getattr(torch.backends, "mps", None), "is_available", lambda: False)()
        return Check("PyTorch", OK, f"{version}, CPU build{' with Apple MPS' if mps else ''}, {threads}")
    if torch.cuda.is_available():
        return Check("PyTorch", OK, f"{version}, CUDA {cuda} build, GPU: {torch.cuda.get_device_name(0)}, {threads}")
    return Check(
        "PyTorch",
        WARN,
        f"{version}, CUDA {cuda} build but no GPU here: the CPU does the work, {threads}",
        f"the CPU build is about 2.5 GB smaller: pip install --force-reinstall torch=={version.split('+')[0]} "
        f"--index-url {CPU_INDEX}",
    )


def _check_packages() -> Check:
    missing, old, found = [], [], []
    for dist, minimum in ESSENTIAL_PACKAGES.items():
        version = _version(dist)
        if version is None:
            missing.append(dist)
        elif not _at_least(version, minimum):
            old.append(f"{dist} {version} (needs >= {minimum})")
        else:
            found.append(f"{dist} {version}")
    if missing or old:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"too old: {', '.join(old)}"] if old else []
        )
        return Check(
            "packages",
            FAIL,
            "; ".join(problems),
            "pip install -r requirements.txt (in a checkout: make install), or pip install composer-capsules",
        )
    return Check("packages", OK, f"all {len(found)} present: {', '.join(found)}")


def _fluidsynth_fix() -> str:
    if _version("pyfluidsynth") is None:
        return "pip install pyfluidsynth, and the FluidSynth library (see the README)"
    if (Path(sys.prefix) / "conda-meta").is_dir():
        lib = Path(sys.prefix) / "lib"
        if any(lib.glob("libfluidsynth.so*")) or any(lib.glob("libfluidsynth*.dylib")):
            return (
                f"conda's FluidSynth is installed but not on the library path: export LD_LIBRARY_PATH={lib} "
                "before starting Jupyter (or conda env config vars set LD_LIBRARY_PATH=...), then restart the kernel"
            )
        return "conda install -c conda-forge fluidsynth, then restart the kernel"
    if sys.platform == "darwin":
        return "brew install fluid-synth, then restart the kernel"
    if sys.platform.startswith("win"):
        return "install FluidSynth (github.com/FluidSynth/fluidsynth/releases) and put its bin folder on PATH"
    return "sudo apt-get install libfluidsynth3 (Debian/Ubuntu; make lab does it as root), then restart the kernel"


def _check_audio() -> Check:
    from . import audio

    choice = os.environ.get("CAPSULE_AUDIO_BACKEND", "auto").strip().lower() or "auto"
    if choice == "builtin":
        return Check("audio", OK, "built-in synthesizer (chosen by CAPSULE_AUDIO_BACKEND=builtin)")
    state = audio._probe()
    if state.module is not None:
        return Check("audio", OK, f"FluidSynth with the General MIDI SoundFont {Path(state.soundfont).name}")
    return Check("audio", WARN, f"the built-in synthesizer stands in: {state.problem}", _fluidsynth_fix())


def _check_mp3() -> Check:
    version = _version("lameenc")
    if version is None or importlib.util.find_spec("lameenc") is None:
        return Check("MP3", WARN, "MP3 export unavailable (lameenc missing); WAV works", "pip install lameenc")
    return Check("MP3", OK, f"lameenc {version}")


def _labextension(name: str, extra_dirs=()) -> Path | None:
    """The folder of the front-end extension ``name`` where a Jupyter server would load it."""
    try:
        from jupyter_core.paths import jupyter_path

        dirs = [Path(p) for p in jupyter_path("labextensions")]
    except ImportError:
        dirs = [Path(sys.prefix) / "share" / "jupyter" / "labextensions"]
    for folder in [*dirs, *extra_dirs]:
        if (folder / name / "package.json").is_file():
            return folder / name
    return None


def _check_widgets() -> Check:
    kernel = _version("anywidget")
    if kernel is None:
        return Check("widgets", FAIL, "anywidget is not installed in this kernel", "pip install anywidget")
    fronts = [
        f"{label} {v}"
        for label, dist in (("JupyterLab", "jupyterlab"), ("Notebook", "notebook"))
        if (v := _version(dist))
    ]
    server_env = SAGEMAKER_SERVER_ENV / "share" / "jupyter" / "labextensions"
    found = _labextension("anywidget", [server_env] if _on_sagemaker() else [])
    where_server_runs = (
        "the environment that runs the Jupyter server (SageMaker: JupyterSystemEnv; "
        "sagemaker/on-start.sh installs it there)"
    )
    if found is None:
        if importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"):
            return Check(
                "widgets",
                OK,
                f"anywidget {kernel} in Colab's front end "
                "(if a widget stays blank: from google.colab import output; output.enable_custom_widget_manager())",
            )
        if fronts:
            return Check(
                "widgets",
                WARN,
                f"anywidget {kernel}, but its front-end extension is missing beside {' and '.join(fronts)}",
                f"pip install --force-reinstall anywidget=={kernel}",
            )
        return Check(
            "widgets",
            WARN,
            f"anywidget {kernel} in the kernel; no JupyterLab or Notebook here and no anywidget "
            "front end found (fine in VS Code or Colab; a Jupyter server elsewhere needs it too, or widgets "
            "show \"Failed to load model class 'AnyModel'\")",
            f"pip install anywidget=={kernel} in {where_server_runs}",
        )
    try:
        front = json.loads((found / "package.json").read_text(encoding="utf-8")).get("version", "?")
    except (OSError, ValueError):
        front = "?"
    if _release(front)[:2] != _release(kernel)[:2]:
        return Check(
            "widgets",
            WARN,
            f"the front end has anywidget {front} ({found}) but the kernel {kernel}: widgets "
            "may show \"Failed to load model class 'AnyModel'\"",
            f"pip install anywidget=={kernel} in {where_server_runs}",
        )
    manager = _labextension("@jupyter-widgets/jupyterlab-manager", [server_env] if _on_sagemaker() else [])
    if manager is None:
        return Check(
            "widgets",
            WARN,
            f"anywidget {kernel}, but the ipywidgets front end (jupyterlab_widgets) is missing",
            f"pip install jupyterlab_widgets in {where_server_runs}",
        )
    return Check(
        "widgets",
        OK,
        f"anywidget {kernel} in kernel and front end"
        + (f"; {', '.join(fronts)}" if fronts else f"; front end in {found.parent}"),
    )


def _check_midi() -> Check:
    if _version("python-rtmidi") is None:
        return Check(
            "MIDI",
            WARN,
            "python-rtmidi missing: hardware keyboards cannot be recorded (the virtual keyboard still works)",
            "pip install python-rtmidi",
        )
    from .recording import midi_status

    status = midi_status()
    if status.startswith("no MIDI ports"):
        status += "; fine: the virtual keyboard needs none, a USB MIDI keyboard shows up here"
    return Check("MIDI", OK, status)


def _check_home() -> Check:
    from .paths import capsule_home

    fix = "export CAPSULE_HOME=/a/folder/you/can/write (before starting Jupyter), or fix the folder's permissions"
    try:
        home = capsule_home()
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=home)
        os.close(fd)
        os.unlink(probe)
    except CapsuleError as exc:
        return Check("capsule home", FAIL, str(exc), fix)
    except OSError as exc:
        return Check("capsule home", FAIL, f"{home} is not writable ({exc.strerror or exc})", fix)
    source = "$CAPSULE_HOME" if os.environ.get("CAPSULE_HOME") else "default"
    if _on_sagemaker() and SAGEMAKER_VOLUME not in home.resolve().parents:
        return Check(
            "capsule home",
            WARN,
            f"{home} is writable but lost when the notebook instance stops",
            f"export CAPSULE_HOME={SAGEMAKER_VOLUME}/.capsule (sagemaker/on-start.sh sets it for the kernel)",
        )
    return Check("capsule home", OK, f"{home} is writable ({source})")


def _check_data() -> Check:
    from . import paths
    from .samples import list_samples

    folder = paths.data_dir()
    source = (
        "$CAPSULE_DATA"
        if os.environ.get("CAPSULE_DATA")
        else "installed package"
        if folder == paths._packaged_data()
        else "repository checkout"
    )
    fix = (
        "pip install --force-reinstall composer-capsules, or set CAPSULE_DATA to the data/ folder of a checkout"
        if source != "$CAPSULE_DATA"
        else "point CAPSULE_DATA at the project's data/ folder, or unset it"
    )
    try:
        melodies = list_samples()
    except CapsuleError as exc:
        return Check("data", FAIL, str(exc), fix)
    models_dir = paths.sample_models_dir()
    models = sorted(p.name for p in models_dir.iterdir() if (p / "model.json").is_file()) if models_dir.is_dir() else []
    if not melodies or not models:
        return Check("data", FAIL, f"{len(melodies)} sample melodies and {len(models)} sample models in {folder}", fix)
    return Check(
        "data",
        OK,
        f"{len(melodies)} sample melodies, {len(models)} sample models ({', '.join(models)}) in {folder} ({source})",
    )


#: name, check, whether the notebooks need it (a crash in an essential check is a failure)
CHECKS = (
    ("Python", _check_python, True),
    ("PyTorch", _check_torch, True),
    ("packages", _check_packages, True),
    ("audio", _check_audio, False),
    ("MP3", _check_mp3, False),
    ("widgets", _check_widgets, False),
    ("MIDI", _check_midi, False),
    ("capsule home", _check_home, True),
    ("data", _check_data, True),
)


def doctor() -> DoctorReport:
    """Check what works here; the report prints as a table with a fix for every problem.

    Returns
    -------
    DoctorReport
        ``report.ok`` is False when something essential is missing; ``report.summary()`` says
        what in one line, ``print(report)`` shows every check.
    """
    import warnings

    checks = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. audio's "falling back to the built-in synthesizer": reported here
        for name, check, essential in CHECKS:
            try:
                checks.append(check())
            except Exception as exc:  # noqa: BLE001 - a broken check is itself a finding, never a crash
                checks.append(
                    Check(
                        name,
                        FAIL if essential else WARN,
                        f"could not be checked ({type(exc).__name__}: {exc})",
                        "run capsule doctor in a terminal of the same environment; report the message if it stays",
                    )
                )
    return DoctorReport(checks)


def command(args) -> None:
    """``capsule doctor [--json]``: print the report; a failed essential check is a CapsuleError (exit 2)."""
    report = doctor()
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(report.text())
    if not report.ok:
        raise CapsuleError(report.summary())


class _CallableModule(types.ModuleType):
    """Importing the submodule rebinds ``capsule_lib.doctor`` to it: keep ``capsule_lib.doctor()`` working."""

    def __call__(self) -> DoctorReport:
        return doctor()


sys.modules[__name__].__class__ = _CallableModule
