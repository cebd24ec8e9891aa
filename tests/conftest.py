"""Shared test fixtures.

``shared`` gives the path of ../shared (real upstream fixtures and specs) and skips the
test when it is absent, as on a clone outside the workplace. ``run_tool`` runs a bin/
executable as a subprocess, the way a user would.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BIN = ROOT / "bin"


@pytest.fixture
def shared():
    if not (SHARED / "fixtures").is_dir():
        pytest.skip("../shared fixtures not available")
    return SHARED


@pytest.fixture
def gaia_fixtures(shared):
    return shared / "fixtures" / "gaia"


def tool_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "lib") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture
def run_tool():
    """run_tool(name, *args, input=bytes|None, cwd=None) -> CompletedProcess (bytes)."""

    def run(name, *args, input=None, cwd=None, timeout=300):
        return subprocess.run([sys.executable, str(BIN / name), *map(str, args)],
                              input=input, capture_output=True, cwd=cwd, env=tool_env(),
                              timeout=timeout)

    return run


def tf_oracle_env():
    """Environment for an essentia-tensorflow oracle subprocess: $MIRKIT_ORACLE_PATH, else
    .oracle-tf/ (make oracle-tf), else the environment's own essentia. Essentia-tensorflow
    bundles its own TensorFlow and aborts a process that also loads tensorflow-cpu: it never
    runs in the test process."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    local = ROOT / ".oracle-tf"
    path = os.environ.get("MIRKIT_ORACLE_PATH") or (str(local) if local.is_dir() else None)
    if path:
        env["PYTHONPATH"] = path
    return env
