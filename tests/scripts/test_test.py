"""README command 2: scripts/test passes its arguments to pytest and fails an empty run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

BASE_DIR = Path(__file__).resolve().parents[2]


def run_script(*args):
    env = {**os.environ, "SCALEPLAN_VENV": sys.prefix}
    return subprocess.run(
        ["bash", "scripts/test", "-p", "no:cacheprovider", *args], cwd=BASE_DIR, env=env,
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )


def test_it_fails_when_no_test_runs():
    # pytest exits 5 here; CI must not count that as a pass.
    done = run_script("-k", "no_test_is_called_this", "tests/scripts")

    assert done.returncode == 1
    assert "collected no tests - treating that as a failure" in done.stderr


def test_it_passes_its_arguments_to_pytest_and_its_exit_code_back():
    done = run_script("--collect-only", "-q", "tests/scripts/test_test.py")

    assert done.returncode == 0, done.stderr
    assert "tests/scripts/test_test.py::test_it_fails_when_no_test_runs" in done.stdout
