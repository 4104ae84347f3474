"""scripts/install_torch.py: the CPU build of PyTorch by default, the GPU build on request,
and a quick fallback to the configured index when PyTorch's CPU index cannot be reached."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "install_torch.py"
_spec = importlib.util.spec_from_file_location("install_torch", SCRIPT)
install_torch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install_torch)

CPU = install_torch.CPU_INDEX
PIN = install_torch.torch_pin()


def up(_index):
    return True


def down(_index):
    return False


def test_the_pin_is_the_one_of_requirements_txt():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    assert f"torch=={PIN}" in [line.strip() for line in lines]


def test_linux_gets_the_cpu_build_from_the_pytorch_cpu_index():
    args, why = install_torch.plan(PIN, platform="linux", gpu=False, index=None, installed=None, probe=up)
    assert args == ["install", "--quiet", f"torch=={PIN}", "--index-url", CPU]
    assert CPU in why


def test_an_unreachable_cpu_index_falls_back_to_the_configured_index_and_says_so():
    args, why = install_torch.plan(PIN, platform="linux", gpu=False, index=None, installed=None, probe=down)
    assert args == ["install", "--quiet", f"torch=={PIN}"]
    assert "cannot be reached" in why and "CUDA" in why


def test_gpu_asks_the_configured_index_for_the_cuda_build_without_probing():
    def probe(_index):
        raise AssertionError("no probe for the GPU build")

    args, why = install_torch.plan(PIN, platform="linux", gpu=True, index=None, installed=None, probe=probe)
    assert args == ["install", "--quiet", f"torch=={PIN}"]
    assert "GPU" in why


def test_macos_and_windows_use_the_configured_index_whose_wheels_are_cpu_builds():
    for platform in ("darwin", "win32"):
        args, _ = install_torch.plan(PIN, platform=platform, gpu=False, index=None, installed=None, probe=down)
        assert args == ["install", "--quiet", f"torch=={PIN}"]


def test_an_installed_cpu_build_at_the_pin_is_left_alone():
    args, why = install_torch.plan(PIN, platform="linux", gpu=False, index=None, installed=f"{PIN}+cpu", probe=up)
    assert args is None and "installed already" in why


def test_switching_build_at_the_same_version_reinstalls_torch():
    to_gpu, _ = install_torch.plan(PIN, platform="linux", gpu=True, index=None, installed=f"{PIN}+cpu", probe=up)
    assert to_gpu == ["install", "--quiet", "--force-reinstall", "--no-deps", f"torch=={PIN}"]
    to_cpu, _ = install_torch.plan(PIN, platform="linux", gpu=False, index=None, installed=PIN, probe=up)
    assert to_cpu == ["install", "--quiet", "--force-reinstall", "--no-deps", f"torch=={PIN}", "--index-url", CPU]


def test_another_torch_version_is_upgraded_normally():
    args, _ = install_torch.plan(PIN, platform="linux", gpu=False, index=None, installed="2.2.0+cpu", probe=up)
    assert args == ["install", "--quiet", f"torch=={PIN}", "--index-url", CPU]


def test_a_given_index_is_tried_first_even_for_the_gpu_build():
    cuda = "https://download.pytorch.org/whl/cu126"
    args, _ = install_torch.plan(PIN, platform="linux", gpu=True, index=cuda, installed=None, probe=up)
    assert args[-2:] == ["--index-url", cuda]


# -- the probe, against real sockets ------------------------------------------------


class _Index(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/simple/torch/" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_index():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_probe_sees_an_index_that_answers_for_torch(local_index):
    assert install_torch.reachable(f"{local_index}/simple")
    assert not install_torch.reachable(f"{local_index}/elsewhere")  # 404


def test_the_probe_gives_up_at_once_on_a_closed_port():
    start = time.monotonic()
    assert not install_torch.reachable(f"http://127.0.0.1:{_closed_port()}/simple")
    assert time.monotonic() - start < install_torch.PROBE_TIMEOUT_S


def _dry_run(*args) -> subprocess.CompletedProcess:
    # -S: without site-packages this interpreter has no torch, as in a fresh .venv
    return subprocess.run(
        [sys.executable, "-S", SCRIPT, "--dry-run", "--platform", "linux", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dry_run_falls_back_when_the_cpu_index_is_unreachable():
    result = _dry_run("--index", f"http://127.0.0.1:{_closed_port()}/simple")
    assert result.returncode == 0, result.stderr
    why, command = result.stdout.strip().splitlines()
    assert "cannot be reached" in why
    assert command.endswith(f"-m pip install --quiet torch=={PIN}")


def test_dry_run_uses_a_reachable_index(local_index):
    result = _dry_run("--index", f"{local_index}/simple")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith(f"torch=={PIN} --index-url {local_index}/simple")


def test_the_makefile_installs_torch_with_the_script_before_the_requirements():
    makefile = (REPO / "Makefile").read_text()
    assert makefile.index("scripts/install_torch.py $(if $(USE_GPU),--gpu)") < makefile.index("-r requirements.txt")
