"""sagemaker/on-start.sh and sagemaker/setup.sh, run in their dry-run mode against a temporary
"persistent volume": the environment lands on the volume, the slow part goes to the background,
the kernel is registered with CAPSULE_HOME on the volume, and the Jupyter server's environment
gets the kernel's anywidget and jupyterlab_widgets versions."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ON_START = REPO / "sagemaker" / "on-start.sh"
SETUP = REPO / "sagemaker" / "setup.sh"


def dry_run(script: Path, volume: Path, *args, **env) -> subprocess.CompletedProcess:
    environ = {
        **os.environ,
        "DRY_RUN": "1",
        "VOLUME": str(volume),
        "REPO_DIR": str(REPO),
        "CONDA_DIR": str(volume / "anaconda3"),
        **env,
    }
    result = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=environ, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def commands(result) -> list[str]:
    return [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]


@pytest.fixture
def ready_env(tmp_path):
    """A volume whose environment was built from the current environment.yml (its python answers versions)."""
    env = tmp_path / ".envs" / "composer-capsules"
    (env / "bin").mkdir(parents=True)
    python = env / "bin" / "python"
    python.write_text("#!/bin/sh\necho 0.11.0 3.0.17\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    checksum = hashlib.sha256((REPO / "environment.yml").read_bytes()).hexdigest()
    (env / ".composer-capsules-ready").write_text(checksum + "\n")
    return tmp_path


@pytest.mark.parametrize("script", [ON_START, SETUP])
def test_the_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck (a lint tool) is not installed here")
def test_shellcheck_finds_nothing():
    result = subprocess.run(["shellcheck", str(ON_START), str(SETUP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_first_start_builds_on_the_volume_in_the_background(tmp_path):
    result = dry_run(ON_START, tmp_path)
    cmds = commands(result)
    env = tmp_path / ".envs" / "composer-capsules"
    assert cmds[0].startswith(f"nohup bash {SETUP} --build >> {tmp_path}/composer-capsules-setup.log")
    assert cmds[0].endswith("&")
    create = next(c for c in cmds if " env create " in c)
    assert f"--prefix {env} --file {REPO}/environment.yml" in create
    assert any(c.endswith(f"pip install --quiet --no-deps -e {REPO}") for c in cmds)
    assert "5 minutes" in result.stdout


def test_a_ready_environment_only_registers_the_kernel_and_the_front_end(ready_env):
    cmds = commands(dry_run(ON_START, ready_env))
    env = ready_env / ".envs" / "composer-capsules"
    server = ready_env / "anaconda3" / "envs" / "JupyterSystemEnv" / "bin" / "python"
    assert not any("env create" in c or "nohup" in c for c in cmds)
    assert f"{server} -m pip install --quiet anywidget==0.11.0 jupyterlab_widgets==3.0.17" in cmds
    (kernel,) = [c for c in cmds if "ipykernel install" in c]
    assert kernel.startswith(f"{env}/bin/python -m ipykernel install --user --name composer-capsules")
    assert f"--env CAPSULE_HOME {ready_env}/.capsule" in kernel
    assert f"--env LD_LIBRARY_PATH {env}/lib" in kernel


def test_a_changed_environment_yml_rebuilds(ready_env):
    (ready_env / ".envs" / "composer-capsules" / ".composer-capsules-ready").write_text("an older checksum\n")
    cmds = commands(dry_run(ON_START, ready_env))
    assert any(c.startswith("nohup bash") for c in cmds) and any(" env create " in c for c in cmds)


def test_mamba_is_used_where_the_instance_has_it(tmp_path):
    mamba = tmp_path / "anaconda3" / "bin" / "mamba"
    mamba.parent.mkdir(parents=True)
    mamba.write_text("#!/bin/sh\n")
    mamba.chmod(0o755)
    cmds = commands(dry_run(SETUP, tmp_path, "--build"))
    assert any(c.startswith(f"{mamba} env create") for c in cmds)


def test_without_a_checkout_on_start_clones_it_first(tmp_path):
    result = dry_run(ON_START, tmp_path, REPO_DIR=str(tmp_path / "composer-capsules"))
    assert commands(result) == [
        f"git clone --depth 1 https://github.com/YOUR-ACCOUNT/composer-capsules.git {tmp_path}/composer-capsules"
    ]


def test_setup_without_a_step_is_a_usage_error(tmp_path):
    result = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, env={**os.environ, "VOLUME": str(tmp_path)}
    )
    assert result.returncode == 2 and result.stderr.startswith("usage:")
