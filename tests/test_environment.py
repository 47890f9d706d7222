"""The venv `make test` built holds exactly requirements.lock: what CI tests is what a clone gets."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

LOCK = ROOT / "requirements.lock"


def locked() -> list[str]:
    return [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]


def test_lock_pins_every_package_exactly():
    lines = locked()
    assert all(line.count("==") == 1 and " " not in line for line in lines), [l for l in lines if "==" not in l]
    names = {line.split("==")[0].lower() for line in lines}
    for needed in ("torch", "scikit-learn", "pandas", "numpy", "gensim", "dvc", "prefect", "pytest", "pip", "setuptools"):
        assert needed in names
    # the CPU build: a plain `torch` would pull a multi-GB CUDA wheel
    assert "torch==2.13.0+cpu" in lines


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="runs in the project's .venv (make test)")
def test_the_venv_is_the_lock():
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    extra, missing = sorted(set(frozen) - set(locked())), sorted(set(locked()) - set(frozen))
    assert not extra and not missing, f"installed but not locked: {extra}; locked but not installed: {missing}"
