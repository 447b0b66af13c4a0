"""Round-trip chapter notebooks to a plain-text form that is easy to edit and diff.

    python tools/nbtext.py to-text notebooks/01_background.ipynb > /tmp/01.txt
    python tools/nbtext.py to-nb /tmp/01.txt notebooks/01_background.ipynb

The text form is a sequence of cells, each opened by a marker line:

    %% md                      a Markdown cell
    %% code                    a code cell
    %% code tags=a,b           a code cell with cell tags (e.g. hide-input)
    %% code meta={...}         ... and cell metadata as JSON to the end of the line
                               (e.g. {"mystnb": {"figure": {"caption": "...", "name": "fig-x"}}})

The notebook is the only committed source; the text form is a working copy.
Notebooks are written with outputs stripped and kernelspec ``python3``.
"""

from __future__ import annotations

import json
import sys

import nbformat

MARK = "%% "


def to_nb(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    cells, kind, tags, meta, buf = [], None, [], {}, []

    def flush():
        if kind is None:
            return
        src = "\n".join(buf).strip("\n")
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell(src)
            cell.metadata.update(meta)
            if tags:
                cell.metadata["tags"] = tags
        cell.pop("id", None)
        cells.append(cell)

    for line in text.splitlines():
        if line.startswith(MARK) and line[3:].split()[0:1] and line[3:].split()[0] in ("md", "code"):
            flush()
            head, _, meta_json = line[3:].partition(" meta=")
            parts = head.split()
            kind, tags, buf = parts[0], [], []
            meta = json.loads(meta_json) if meta_json else {}
            for p in parts[1:]:
                if p.startswith("tags="):
                    tags = p[5:].split(",")
        else:
            buf.append(line)
    flush()
    nb.cells = cells
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i:03d}"
    return nb


def to_text(nb) -> str:
    out = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            out.append("%% md")
        else:
            tags = c.metadata.get("tags", [])
            meta = {k: v for k, v in c.metadata.items() if k != "tags"}
            out.append("%% code" + (f" tags={','.join(tags)}" if tags else "")
                       + (f" meta={json.dumps(meta)}" if meta else ""))
        out.append(c.source)
        out.append("")
    return "\n".join(out)


def main(argv):
    if len(argv) >= 2 and argv[0] == "to-text":
        print(to_text(nbformat.read(argv[1], as_version=4)))
    elif len(argv) == 3 and argv[0] == "to-nb":
        nb = to_nb(open(argv[1], encoding="utf-8").read())
        nbformat.validate(nb)
        nbformat.write(nb, argv[2])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
