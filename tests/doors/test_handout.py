"""The class hand-out door: the archive alone, unpacked outside the repository, set up with the
README's commands and run the way students run it.

Run by ``make check-doors`` (CI's `.ci/run`), not by ``make test``. It writes the student notebooks
afresh (``ptutils-student``), builds the hand-out (``python -m ptutils.classroom.handout``), unzips it
into an empty folder outside the repository, creates the environment with the README's first command
(``python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e .``: offline, from the local
package index and wheel cache), and checks that

* ``ptutils`` imports from the unpacked folder (the student copy), not from the repository, with the
  sentence-polarity benchmark it ships, and without the teacher's modules;
* the environment has the archive's pins;
* a self-check runs there (on the student copy's replaced ``file_fingerprint``);
* chapter 13, a short one, passes the README's self-check command (nbval, fast mode);
* no file of the unpacked archive holds a line of a reference solution or of a hidden test, or a
  solution or hidden-test marker (:func:`ptutils.classroom.handout.leaks`, run on the files on disk).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "13_sharing_models.ipynb"  # 10 s in full mode; MiniLM's shipped weights, safetensors, two self-checks


def run(cmd, *, cwd, env=None, timeout=900, shell=False):
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, shell=shell)
    print(f"{time.perf_counter() - t:6.1f} s  {cmd if shell else ' '.join(map(str, cmd))}")
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_the_handout_installs_and_runs_on_its_own(tmp_path):
    py = sys.executable
    run([py, "-m", "ptutils.classroom", str(ROOT / "notebooks"), str(tmp_path / "student")], cwd=ROOT)
    archive = tmp_path / "student" / "handout.zip"
    run([py, "-m", "ptutils.classroom.handout", str(tmp_path / "student"), str(archive),
         "--reference", str(ROOT / "notebooks")], cwd=ROOT)

    unpacked = tmp_path / "class"  # an empty folder outside the repository, as a student's
    unpacked.mkdir()
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(unpacked)
    home = unpacked / "handout"
    assert not home.resolve().is_relative_to(ROOT.resolve())

    # The README's set-up command, word for word, with the interpreter a student would have.
    readme = (home / "README.md").read_text()
    setup = "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e ."
    assert setup in readme
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp_path), PYTHONHASHSEED="0", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PATH=f"{Path(sys.base_prefix) / 'bin'}:{env.get('PATH', '')}")
    run(setup.replace(".venv/bin/pip install", ".venv/bin/pip install --quiet --no-compile"), cwd=home, env=env, shell=True)
    vpy = home / ".venv" / "bin" / "python"

    where = run([str(vpy), "-c", "import ptutils, ptutils.classroom.checks as c; print(ptutils.__file__); "
                 "print(len(ptutils.load_rt_polarity()[0]))"], cwd=tmp_path, env=env).split()
    assert where[0] == str(home / "ptutils" / "__init__.py"), f"ptutils imported from {where[0]}"
    assert where[1] == "10662", "the benchmark ships inside the student copy"
    gone = run([str(vpy), "-c", "import importlib.util as u; print([m for m in ('ptutils.classroom.grade', "
                "'ptutils.classroom.sandbox', 'ptutils.classroom.student', 'ptutils.classroom.handout') "
                "if u.find_spec(m)])"], cwd=tmp_path, env=env).strip()
    assert gone == "[]", f"teacher's modules in the student environment: {gone}"

    pins = dict(line.split("==") for line in (home / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    freeze = run([str(vpy), "-m", "pip", "freeze", "--exclude-editable"], cwd=tmp_path, env=env)
    have = {n.lower().replace("_", "-"): v.split("+")[0] for n, v in
            (line.split("==") for line in freeze.splitlines() if "==" in line)}
    wrong = {n: (v, have.get(n)) for n, v in pins.items() if have.get(n) != v}
    assert not wrong, f"installed versions differ from the archive's pins: {wrong}"

    check = run([str(vpy), "-c", "import ptutils; ptutils.check('ch13.sha256_file', ptutils.cache.file_fingerprint)"],
                cwd=tmp_path, env=env)
    assert check.startswith("[pass] ch13.sha256_file"), check

    # The README's self-check command, as a student runs it in the folder.
    example = re.search(r"^PTUTILS_FAST=1 .*nbval.* (notebooks/\S+\.ipynb)$", readme, re.M)
    assert example, "the README has no self-check command"
    selfcheck = example.group(0).replace(example.group(1), f"notebooks/{CHAPTER}")
    out = run(selfcheck + " -q -p no:cacheprovider", cwd=home, env=env, shell=True)
    assert " passed" in out and "failed" not in out, out

    # Every file of the archive, read back from disk, against every chapter's solutions and hidden tests.
    from ptutils.classroom import handout

    files = {p.relative_to(home).as_posix(): p.read_bytes() for p in sorted(home.rglob("*"))
             if p.is_file() and ".venv" not in p.parts and "__pycache__" not in p.parts
             and ".ptutils_cache" not in p.parts and "egg-info" not in str(p) and ".ipynb_checkpoints" not in p.parts}
    assert set(files) == {n.removeprefix("handout/") for n in zipfile.ZipFile(archive).namelist()}
    assert handout.leaks(files, handout._reference(ROOT / "notebooks")) == []
