"""The sandbox one submission runs in: bubblewrap, resource limits, one file out.

Each submission runs :mod:`ptutils.classroom.runner` (nbclient and the kernel together) in
its own ``bwrap`` sandbox that sees

* ``/usr`` (and the ``/lib``, ``/bin`` links), the Python installation, the virtual
  environment and the ``ptutils`` package, all read-only;
* ``/in/job.json``, read-only: this one student's code cells and the hidden tests' inputs
  and calls (never their checks or expected values);
* ``/out/result.json``, the only file it can write outside its own ``/tmp`` (a size-capped
  RAM disk that disappears with it);

and nothing else: not the submissions folder, not the hidden-test notebook, not the output
folder, not the repository, no other process (its own PID namespace) and no network (its own
network namespace, where only its loopback exists). Run as root (a lab server, CI), the
sandbox also drops to an unprivileged user of its own, so ``RLIMIT_NPROC`` counts its
processes only; run as a teacher's own user, bwrap's user namespace does the same.

Limits (each a flag of the grader, see :class:`Limits`): virtual memory per process
(``prlimit --as``), processes and threads (``--nproc``), CPU seconds per process
(``--cpu``), size of a file written (``--fsize``), size of ``/tmp``, wall time of the whole
submission (``timeout -k``), printed output and the size of an answer (counted by the
runner and the grader).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
BASE_UID = 61000  # worker i runs as uid BASE_UID + i when the grader runs as root


@dataclass
class Limits:
    memory_mb: int = 8192       # virtual memory per process (RLIMIT_AS); PyTorch maps a lot
    processes: int = 256        # processes and threads of the sandbox's user (RLIMIT_NPROC)
    cpu_s: int = 1800           # CPU seconds per process (RLIMIT_CPU)
    file_mb: int = 64           # largest file the submission may write (RLIMIT_FSIZE)
    tmp_mb: int = 512           # its /tmp, a RAM disk
    output_mb: float = 1.0      # printed output over this is reported (it is never kept)
    answer_mb: float = 16.0     # one hidden test's returned values, as JSON
    cell_timeout: int = 120     # seconds per cell (interrupted, then the next cell runs)
    total_timeout: int = 1800   # seconds for the student's cells; the sandbox is killed at
    wall_margin_s: int = 60     # total + this + one cell timeout per hidden test


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _root_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for d in ("/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        p = Path(d)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), d]
        elif p.exists():
            args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/passwd", "/etc/group", "/etc/fonts", "/etc/localtime"):
        if Path(f).exists():
            args += ["--ro-bind", f, f]
    return args


def _readonly_trees() -> list[Path]:
    """The interpreter, the environment and the ptutils package: what the kernel imports."""
    import ptutils

    trees = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(ptutils.__file__).resolve().parent}
    for p in sys.path:  # other site directories (user site, .pth additions), but never the repository root
        q = Path(p).resolve() if p else None
        if q and q.is_dir() and "site-packages" in q.parts and not any(q.is_relative_to(t) for t in trees):
            trees.add(q)
    # drop trees inside others
    return sorted(t for t in trees if not any(t != u and t.is_relative_to(u) for u in trees))


def _parents(paths) -> list[str]:
    out = []
    for t in paths:
        for parent in reversed(Path(t).parents):
            s = str(parent)
            if s != "/" and s not in out:
                out.append(s)
    return out


def command(job_dir: Path, result: Path, limits: Limits, *, worker: int = 0, wall_s: int) -> list[str]:
    """The argv that runs the runner on ``job_dir/job.json`` inside bwrap, under the limits."""
    trees = _readonly_trees()
    root = os.geteuid() == 0
    args = ["timeout", "-k", "5", str(wall_s), bwrap_path() or "bwrap",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if not root:
        args += ["--unshare-user"]
    args += _root_binds()
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "01777", "--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
    for d in _parents([*trees, "/in/x", "/out/x"]):
        if d not in ("/usr",) and not d.startswith("/usr/"):
            args += ["--perms", "0755", "--dir", d]
    for t in trees:
        args += ["--ro-bind", str(t), str(t)]
    args += ["--ro-bind", str(job_dir), "/in", "--bind", str(result), "/out/result.json",
             "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
             "--setenv", "PATH", f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
             "--chdir", "/tmp", "--"]
    if root:
        uid = str(BASE_UID + worker)
        args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all", "--no-new-privs", "--"]
    args += prlimits(limits) + [sys.executable, "-I", str(RUNNER), "/in/job.json", "/out/result.json"]
    return args


def prlimits(limits: Limits) -> list[str]:
    return ["prlimit", f"--as={limits.memory_mb * 2**20}", f"--nproc={limits.processes}",
            f"--fsize={limits.file_mb * 2**20}", f"--cpu={limits.cpu_s}", "--core=0", "--nofile=1024", "--"]


_usable: dict = {}
_lock = threading.Lock()


def usable() -> tuple[bool, str]:
    """Whether a sandbox starts here (bwrap installed and allowed to make its namespaces)."""
    with _lock:
        if "ok" not in _usable:
            if not bwrap_path():
                _usable.update(ok=False, why="bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)")
            else:
                with tempfile.TemporaryDirectory() as d:
                    r = Path(d) / "r"
                    r.write_text("")
                    os.chmod(r, 0o666)
                    os.chmod(d, 0o755)
                    argv = command(Path(d), r, Limits(), wall_s=60)
                    i = argv.index(sys.executable)
                    argv[i:] = [sys.executable, "-I", "-c", "open('/out/result.json', 'w').write('ok')"]
                    p = subprocess.run(argv, capture_output=True, text=True)
                    ok = p.returncode == 0 and r.read_text() == "ok"
                    _usable.update(ok=ok, why="" if ok else f"bwrap could not start a sandbox: {p.stderr.strip()[:300]}")
        return _usable["ok"], _usable["why"]


def run(job: dict, limits: Limits, *, worker: int = 0, unsafe: bool = False) -> tuple[dict | None, str]:
    """Run one job; returns (the runner's result as parsed JSON or None, a note on how it ended).

    The result is untrusted: the grader validates every field of it.
    """
    n_tests = len(job["tests"])
    wall = limits.total_timeout + limits.wall_margin_s + n_tests * limits.cell_timeout
    with tempfile.TemporaryDirectory(prefix="ptutils-grade-") as d:
        d = Path(d)
        job_dir = d / "in"
        job_dir.mkdir()
        (job_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        result = d / "result.json"
        result.write_text("")
        for p, mode in ((d, 0o755), (job_dir, 0o755), (job_dir / "job.json", 0o644), (result, 0o666)):
            os.chmod(p, mode)
        if unsafe:
            work = d / "tmp"
            work.mkdir()
            argv = ["timeout", "-k", "5", str(wall), *prlimits(limits), sys.executable, "-I", str(RUNNER),
                    str(job_dir / "job.json"), str(result)]
            env = {"HOME": str(work), "TMPDIR": str(work), "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin",
                   "LANG": "C.UTF-8"}
            p = subprocess.run(argv, capture_output=True, env=env, cwd=work, stdin=subprocess.DEVNULL)
        else:
            argv = command(job_dir, result, limits, worker=worker, wall_s=wall)
            p = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
        note = ""
        if p.returncode in (124, 137):
            note = f"the submission ran past its wall-time limit ({wall} s) and was stopped"
        elif p.returncode != 0:
            note = f"the sandbox ended with exit code {p.returncode}"
        limit = int(limits.answer_mb * 2**20) * max(n_tests, 1) + 2**20
        try:
            with result.open("rb") as f:
                raw = f.read(limit + 1)
        except OSError as e:
            return None, note or f"no result: {e}"
        if len(raw) > limit:
            return None, note or "the result file is larger than the answers allow"
        try:
            return json.loads(raw.decode("utf-8")), note
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None, note or "the result file is not valid JSON"
