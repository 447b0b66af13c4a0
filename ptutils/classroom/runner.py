"""Run one submission's cells in a kernel; the grader starts this inside the sandbox.

    python runner.py job.json result.json

``job.json`` (written by :mod:`ptutils.classroom.grade`) holds the student's code cells, the
kernel-side part of each hidden test (inputs and calls, no expected values), the time limits
and the size limit of an answer. This file runs as a script, not as ``ptutils.classroom.runner``, so
the sandbox does not import ``ptutils`` (nor PyTorch) before the student's own cells do.

It writes ``result.json`` after every cell: each student cell's error (or ``null``), each
test's answer payload (the JSON the kernel printed for it), how much output the notebook
printed, and whether it finished. Everything here runs with the student's rights: the grader
treats the file as untrusted input (:mod:`ptutils.classroom.plaindata`) and decides every
verdict itself.
"""

from __future__ import annotations

import json
import os
import sys
import time

MIME = "application/x-ptutils-answer+json"


def main(job_path: str, result_path: str) -> int:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    import nbformat

    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    t0 = time.monotonic()
    answer_limit = int(job["answer_limit"])
    res = {"cells": [], "tests": {}, "output_bytes": 0, "fatal": "", "finished": False}

    def save():
        with open(result_path, "w", encoding="utf-8") as f:
            json.dump(res, f)

    class Client(NotebookClient):
        """Keeps only errors and answers; counts (and drops) everything else a cell prints."""

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            kind = msg.get("msg_type")
            if kind == "stream":
                res["output_bytes"] += len(content.get("text", ""))
                return None
            if kind in ("display_data", "execute_result", "update_display_data"):
                data = content.get("data", {})
                if kind == "display_data" and MIME in data:
                    outs.append(nbformat.v4.new_output("display_data", data={MIME: str(data[MIME])[:answer_limit]}))
                    return None
                res["output_bytes"] += sum(len(str(v)) for v in data.values())
                return None
            if kind == "error":
                outs.append(nbformat.v4.new_output(
                    "error", ename=str(content.get("ename", ""))[:200], evalue=str(content.get("evalue", ""))[:500],
                    traceback=[]))
            return None

    cells = [nbformat.v4.new_code_cell(s) for s in job["cells"]]
    tests = [nbformat.v4.new_code_cell(t["code"]) for t in job["tests"]]
    nb = nbformat.v4.new_notebook()
    nb.cells = cells + tests
    cell_timeout, total_timeout = int(job["cell_timeout"]), int(job["total_timeout"])
    work = os.path.join(os.environ.get("TMPDIR", "/tmp"), "work")
    os.makedirs(work, exist_ok=True)
    client = Client(nb, timeout=cell_timeout, allow_errors=True, interrupt_on_timeout=True,
                    kernel_name=job.get("kernel", "python3"), resources={"metadata": {"path": work}})

    def error_of(cell):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                if out.get("ename") == "KeyboardInterrupt":
                    return f"timed out after {cell_timeout} s (interrupted)"
                return f"{out.get('ename')}: {out.get('evalue')}"[:500]
        return None

    save()
    try:
        with client.setup_kernel(env=job["env"], cwd=work):
            for i, cell in enumerate(cells):
                if time.monotonic() - t0 > total_timeout:
                    res["cells"].append("skipped: the submission used up its total time")
                    continue
                try:
                    client.execute_cell(cell, i)
                    res["cells"].append(error_of(cell))
                except CellTimeoutError:
                    res["cells"].append(f"timed out after {cell_timeout} s (interrupted)")
                save()
            for j, (t, cell) in enumerate(zip(job["tests"], tests)):
                try:
                    client.execute_cell(cell, len(cells) + j)
                except CellTimeoutError:
                    res["tests"][t["name"]] = {"timeout": f"timed out after {cell_timeout} s"}
                    save()
                    continue
                answers = [o["data"][MIME] for o in cell.get("outputs", [])
                           if o.get("output_type") == "display_data" and MIME in o.get("data", {})]
                err = error_of(cell)
                res["tests"][t["name"]] = {"payloads": answers[-20:], "error": err}
                save()
    except DeadKernelError as e:
        res["fatal"] = f"the kernel died: {e}"[:500]
    except Exception as e:  # noqa: BLE001 - report, the grader decides
        res["fatal"] = f"grading error: {type(e).__name__}: {e}"[:500]
    res["finished"] = True
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
