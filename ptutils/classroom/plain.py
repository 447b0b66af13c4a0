"""Markdown that reads in plain Jupyter and Colab: MyST roles replaced by text.

The chapters' prose uses MyST syntax that only Jupyter Book renders. On the website a
``{glue:text}`` role is a number the page's code computed; in Jupyter or Colab it is
the raw role. :func:`plain_notebook` rewrites every Markdown cell of a student notebook:

* a glue role (``{glue}``, ``{glue:}``, ``{glue:any}``, ``{glue:text}``, ``{glue:md}``)
  becomes the glue name in bold brackets, and the cell ends with a note that says which
  code cell computes each bracketed value (found from the notebook's ``glue`` calls, see
  :func:`glue_sources`); a glue directive (``{glue:figure}`` and the others) becomes a
  paragraph that names the figure or value and keeps its caption;
* ``{ref}`` becomes the target's title (a link when it is another chapter), ``{numref}``
  "the figure above/below", ``{eq}`` the equation's label as Jupyter shows it, ``{term}``
  and ``{doc}`` their text, ``{footcite}`` "(Author, year)" from ``book/references.bib``
  and ``{footbibliography}`` the list of the chapter's references; label targets are
  dropped, ``{exercise-start}`` becomes "Exercise." and ``{mermaid}`` a mermaid block;
* code spans and code blocks are never touched; a role that is not closed is left as it
  is, and :func:`raw_roles` reports it, so the caller can refuse to hand it out.

:func:`student_glue_source` makes the same notebook's ``glue`` calls print what they glue
(:mod:`ptutils.classroom.glue`), so the note's "printed by the code cell above" is true.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

GLUE_ROLES = {"glue", "glue:", "glue:any", "glue:text", "glue:md"}
GLUE_DIRECTIVES = {"glue", "glue:", "glue:any", "glue:figure", "glue:math", "glue:md"}
CITE_ROLES = {"footcite", "footcite:p", "footcite:t", "cite", "cite:p", "cite:t"}
REPLACED_ROLES = GLUE_ROLES | CITE_ROLES | {"ref", "numref", "eq", "term", "doc"}
# directives whose body is not Markdown: left verbatim
# directives that become plain Markdown: what their opening shows (their closing shows nothing)
PLAIN_DIRECTIVES = {"exercise-start": "**Exercise.**", "exercise-end": "", "footbibliography": ""}
VERBATIM_DIRECTIVES = {"code", "code-block", "code-cell", "sourcecode", "mermaid", "math", "raw",
                       "literalinclude", "eval-rst", "graphviz", "bibliography"}

ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w+\-]*(?::[\w+\-]*)*)\}(?P<ticks>`+)")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
TARGET = re.compile(r"^\s*\((?P<label>[^()\s]+)\)=\s*$")
HEADING = re.compile(r"^ {0,3}(?P<hashes>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
EQ_LABEL = re.compile(r"\$\$\s*\((?P<label>[\w\-:.]+)\)\s*$", re.M)
LITERAL_GLUE = re.compile(r"\bglue\(\s*(?P<q>['\"])(?P<name>[^'\"\\{}]+)(?P=q)")
FSTRING_GLUE = re.compile(r"\bglue\(\s*[fF](?P<q>['\"])(?P<body>[^'\"\\]*)(?P=q)")
ANY_GLUE = re.compile(r"\bglue\(")
GLUE_IMPORT = re.compile(r"^(?P<indent>[ \t]*)from myst_nb import glue[ \t]*$", re.M)
SHIM_IMPORT = "from ptutils.classroom.glue import glue  # prints what it glues (student version)"


# --------------------------------------------------------------------------- inline scanning
def _closing_run(s: str, start: int, n: int) -> int:
    """Index of the next run of exactly ``n`` backticks at or after ``start`` in the same
    paragraph (no blank line in between), or -1."""
    end = s.find("\n\n", start)
    end = len(s) if end < 0 else end
    for m in re.finditer(r"`+", s[start:end]):
        if len(m.group(0)) == n:
            return start + m.start()
    return -1


def _tokens(s: str):
    """Split Markdown text into text, code-span and role tokens.

    The tokens are ``("text", str)``, ``("code", str)`` (a code span, kept verbatim) and
    ``("role", name, content, raw)``; a role that is not closed is text.
    """
    i, n, text = 0, len(s), []

    def flush():
        if text:
            yield ("text", "".join(text))
            text.clear()

    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            text.append(s[i:i + 2])
            i += 2
            continue
        if c == "{":
            m = ROLE.match(s, i)
            if m:
                k = len(m.group("ticks"))
                close = _closing_run(s, m.end(), k)
                if close >= 0 and "\n" not in s[m.end():close]:
                    content = s[m.end():close]
                    if k > 1 and content.startswith(" ") and content.endswith(" ") and content.strip():
                        content = content[1:-1]  # CommonMark strips one space each side
                    yield from flush()
                    yield ("role", m.group("name"), content, s[i:close + k])
                    i = close + k
                    continue
                text.append(s[i:m.start("ticks")])  # not closed: literal text; rescan the ticks
                i = m.start("ticks")
                continue
        if c == "`":
            k = len(re.match(r"`+", s[i:]).group(0))
            close = _closing_run(s, i + k, k)
            if close >= 0:
                yield from flush()
                yield ("code", s[i:close + k])
                i = close + k
            else:
                text.append(s[i:i + k])
                i += k
            continue
        text.append(c)
        i += 1
    yield from flush()


def _inline(s: str, role_fn, text_fn=None) -> str:
    """Apply ``role_fn(name, content) -> str | None`` to each MyST role in Markdown text
    ``s`` outside code spans (``None`` keeps the role as it is), and ``text_fn`` to the text
    between roles and code spans."""
    out = []
    for tok in _tokens(s):
        if tok[0] == "role":
            new = role_fn(tok[1], tok[2])
            out.append(tok[3] if new is None else new)
        elif tok[0] == "text" and text_fn is not None:
            out.append(text_fn(tok[1]))
        else:
            out.append(tok[1])
    return "".join(out)


def _segments(text: str):
    """Split Markdown into ``(kind, text, info)`` pieces: kind "md" (prose, scanned for roles),
    "verbatim" (the inside of a code block), "open" (a fence's opening line and the directive's
    options; info ``(directive or None, argument or info string)``), "close" (its closing
    fence; info the directive) or "glue" (a whole glue directive; info ``(directive, key)``)."""
    lines = text.split("\n")
    segs, buf, stack, i = [], [], [], 0  # stack: open fences (char, length, verbatim, directive)

    def flush():
        if buf:
            segs.append(("md", "\n".join(buf), None))
            buf.clear()

    while i < len(lines):
        line = lines[i]
        verbatim = bool(stack) and stack[-1][2]
        m = FENCE.match(line)
        if m and stack and m.group("fence")[0] == stack[-1][0] and len(m.group("fence")) >= stack[-1][1] \
                and not m.group("info").strip():
            flush()
            segs.append(("close", line, stack.pop()[3]))
            i += 1
            continue
        if m and not verbatim:
            fence, info = m.group("fence"), m.group("info").strip()
            d = re.match(r"^\{(?P<d>[^}\s]+)\}\s*(?P<arg>.*)$", info)
            if fence[0] == ":" and not d:
                buf.append(line)  # a colon line that is no directive
                i += 1
                continue
            flush()
            if d and d.group("d") in GLUE_DIRECTIVES:
                j = i + 1
                while j < len(lines):  # the directive's end: a bare fence of its kind
                    e = FENCE.match(lines[j])
                    if e and e.group("fence")[0] == fence[0] and len(e.group("fence")) >= len(fence) \
                            and not e.group("info").strip():
                        break
                    j += 1
                segs.append(("glue", "\n".join(lines[i:j + 1]), (d.group("d"), d.group("arg").strip())))
                i = j + 1
                continue
            name = d.group("d") if d else None
            stack.append((fence[0], len(fence), not d or name in VERBATIM_DIRECTIVES, name))
            head = [line]
            i += 1
            while not stack[-1][2] and i < len(lines) and re.match(r"^\s*:[\w\-]+:", lines[i]):
                head.append(lines[i])  # directive options
                i += 1
            segs.append(("open", "\n".join(head), (name, d.group("arg").strip() if d else info)))
            continue
        if verbatim:
            segs.append(("verbatim", line, None))
        else:
            buf.append(line)
        i += 1
    flush()
    return segs


def raw_roles(text: str, roles=GLUE_ROLES) -> list[str]:
    """The roles named in ``roles`` (and any glue directive) left in Markdown ``text``,
    outside code spans and code blocks, closed or not, in order."""
    found = []
    for kind, seg, _ in _segments(text):
        if kind == "glue":
            found.append(seg.split("\n")[0].strip())
        elif kind == "md":
            for tok in _tokens(seg):
                if tok[0] == "role" and tok[1] in roles:
                    found.append(tok[3])
                elif tok[0] == "text":
                    found += [m.group(0) for m in ROLE.finditer(tok[1]) if m.group("name") in roles]
                    found += [m.group(0) for m in re.finditer(r"\{[\w:+\-]+\}(?!`)", tok[1])
                              if m.group(0)[1:-1] in roles]
    return found


# --------------------------------------------------------------------------- the notebook's index
@dataclass
class Index:
    """What the replacements need to know about the chapters: titles, figures, references."""

    labels: dict = field(default_factory=dict)    # label -> (notebook name, title)
    figures: dict = field(default_factory=dict)   # label -> (notebook name, cell index)
    equations: dict = field(default_factory=dict)  # label -> notebook name
    terms: set = field(default_factory=set)
    bib: dict = field(default_factory=dict)       # key -> (authors, year, title)


def _title(line: str) -> str | None:
    m = HEADING.match(line)
    return m.group("title") if m else None


def index_notebooks(paths, bib: Path | None = None, pages=()) -> Index:
    """Collect the targets of ``{ref}``/``{numref}``/``{eq}`` in notebooks ``paths`` and prose
    ``pages`` (Markdown files), and the bibliography ``bib``."""
    import nbformat

    idx = Index()

    def scan_md(text, where):
        lines = text.split("\n")
        for k, line in enumerate(lines):
            t = TARGET.match(line)
            if t:
                nxt = next((ln for ln in lines[k + 1:] if ln.strip()), "")
                idx.labels.setdefault(t.group("label"), (where, _title(nxt)))
        for e in EQ_LABEL.finditer(text):
            idx.equations.setdefault(e.group("label"), where)

    for path in paths:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                scan_md(cell.source, path.name)
            fig = cell.metadata.get("mystnb", {}).get("figure", {})
            if fig.get("name"):
                idx.figures.setdefault(fig["name"], (path.name, i))
                idx.labels.setdefault(fig["name"], (path.name, fig.get("caption", "").split(". ")[0] or None))
    for page in pages:
        scan_md(Path(page).read_text(encoding="utf-8"), None)
    if bib is not None and Path(bib).exists():
        idx.bib = parse_bib(Path(bib).read_text(encoding="utf-8"))
    return idx


def parse_bib(text: str) -> dict:
    """``key -> (authors, year, title)`` from a BibTeX file (a light parser: enough for the
    author names, year and title of ordinary entries)."""
    out = {}
    for m in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,(.*?)\n\}", text, re.S):
        key, body = m.group(1), m.group(2)
        fields = {}
        for f in re.finditer(r"(\w+)\s*=\s*(\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}|\"[^\"]*\"|\d+)", body):
            fields[f.group(1).lower()] = re.sub(r"[{}]|\\.", "", f.group(2).strip("{}\"")).strip()
        people = [a.strip() for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip()]
        last = [p.split(",")[0].strip() if "," in p else p.split()[-1] for p in people]
        if len(last) > 2:
            names = f"{last[0]} et al."
        else:
            names = " and ".join(last)
        out[key] = (names or key, fields.get("year", ""), fields.get("title", ""))
    return out


# --------------------------------------------------------------------------- where a value is glued
def _pattern(body: str) -> re.Pattern | None:
    """A regex for the names an f-string glue name can take; None if it is all placeholders."""
    parts = re.split(r"\{[^{}]*\}", body)
    if not "".join(parts).strip("_"):
        return None
    return re.compile(".+".join(re.escape(p) for p in parts) + r"\Z")


def _glue_name_patterns(source: str) -> tuple[list[str], bool] | None:
    """The regexes of the names a code cell's ``glue`` calls can glue, and whether some call's
    name cannot be read; None when the cell does not parse.

    The first argument of each ``glue(...)`` is read as a string, an f-string, a ``+`` of
    them, or a name bound in the cell: by an assignment, a ``for`` over a literal tuple or
    list, or a parameter of a function the cell defines and calls (with the call's
    arguments). An f-string's part that cannot be read matches anything.
    """
    import ast
    import itertools

    try:
        from IPython.core.inputtransformer2 import TransformerManager

        code = TransformerManager().transform_cell(source)
    except Exception:  # IPython missing or a cell it cannot transform: read it as Python
        code = source
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    binds, funcs = {}, {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}

    def bind(target, value):
        if isinstance(target, ast.Name):
            binds.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                bind(t, v)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                bind(t, node.value)
        elif isinstance(node, ast.For) and isinstance(node.iter, (ast.Tuple, ast.List)):
            for elt in node.iter.elts:
                bind(node.target, elt)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in funcs:
            params = [x.arg for x in funcs[node.func.id].args.args]
            for name, arg in [*zip(params, node.args), *((k.arg, k.value) for k in node.keywords)]:
                binds.setdefault(name, []).append(arg)

    def pats(expr, depth=0):  # a list of regexes, or None if unknown
        if depth > 6:
            return None
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return [re.escape(expr.value)]
        if isinstance(expr, ast.Name):
            got = [pats(v, depth + 1) for v in binds.get(expr.id, [])]
            return None if not got or None in got else [p for g in got for p in g]
        if isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Slice) and expr.slice.lower is None \
                and expr.slice.step is None and isinstance(expr.slice.upper, ast.Constant) \
                and isinstance(expr.slice.upper.value, int) and expr.slice.upper.value > 0:
            return [f".{{0,{expr.slice.upper.value}}}"]  # name[:3]: at most three characters
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            parts = [pats(expr.left, depth + 1), pats(expr.right, depth + 1)]
        elif isinstance(expr, ast.JoinedStr):
            parts = [pats(v, depth + 1) if isinstance(v, ast.Constant)
                     else (pats(v.value, depth + 1) if v.conversion == -1 and v.format_spec is None else None)
                     for v in expr.values]
            parts = [p if p is not None else [".+"] for p in parts]
        else:
            return None
        if None in parts:
            return None
        combos = list(itertools.islice(itertools.product(*parts), 200))
        return ["".join(c) for c in combos] if len(combos) < 200 else None

    found, calls = [], 0
    opaque = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "glue":
            calls += 1
            got = pats(node.args[0]) if node.args else None
            usable = [p for p in got or [] if re.sub(r"\.\+|\.\{0,\d+\}", "", p).strip("_")]
            opaque |= got is None or len(usable) < len(got)
            found += usable
    # a glue( the syntax tree does not show (in a magic's string, say) could glue anything
    return found, opaque or len(ANY_GLUE.findall(source)) > calls


def glue_sources(nb) -> dict:
    """``name -> set of code cell indices``: the cells that can have glued ``name``.

    Read from the code (:func:`_glue_name_patterns`): ``glue("name", ...)`` glues ``name``
    in its cell (glue names are unique), so that cell is the answer. Otherwise the
    candidates are the cells whose glue names can match, plus every cell with a ``glue``
    call whose name cannot be read; an empty set means no cell glues it. The answer is
    exact when it has one cell. It assumes that a cell that glues contains the ``glue(``
    call: a helper that glues must be called in the cell that defines it (the chapters'
    helpers are).
    """
    literal, patterns, opaque = {}, [], set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not ANY_GLUE.search(cell.source):
            continue
        for _, name in LITERAL_GLUE.findall(cell.source):
            literal.setdefault(name, {i})
        read = _glue_name_patterns(cell.source)
        if read is None:  # not Python: the f-strings of its glue calls, by their text
            calls = len(ANY_GLUE.findall(cell.source))
            fst = FSTRING_GLUE.findall(cell.source)
            read = ([], calls > len(LITERAL_GLUE.findall(cell.source)) + len(fst))
            for _, body in fst:
                p = _pattern(body)
                read[0].append(p.pattern[:-2]) if p is not None else read[0].append(".+")
            read = ([p for p in read[0] if p != ".+"], read[1] or ".+" in read[0])
        patterns += [(re.compile(p + r"\Z"), i) for p in read[0]]
        if read[1]:
            opaque.add(i)

    class Sources(dict):
        def __missing__(self, name):
            return {i for p, i in patterns if p.match(name)} | opaque

    return Sources(literal)


# --------------------------------------------------------------------------- the rewrite
def _sections(nb) -> list:
    """The title of the section each cell is in (None before the first heading): a Markdown
    cell that starts with a heading is in that section, a code cell in the last one above."""
    out, current = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = [ln for ln in cell.source.split("\n") if ln.strip() and not TARGET.match(ln)]
            before = current
            for line in lines:
                current = _title(line) or current
            out.append((_title(lines[0]) if lines else None) or before)
            continue
        out.append(current)
    return out


def _where(nb, sections, target: int, here: int, what="code cell") -> str:
    """"the code cell above", "a code cell below", "a code cell below, in “Results”"."""
    lo, hi = sorted((target, here))
    between = sum(1 for c in nb.cells[lo + 1:hi] if c.cell_type == "code")
    direction = "above" if target < here else "below"
    if sections[target] != sections[here] and sections[target]:
        return f"a {what} {direction}, in “{sections[target]}”"
    return f"the {what} {direction}" if between == 0 else f"a {what} {direction}"


def _where_any(nb, sections, targets: set, here: int) -> str:
    """Where one of the code cells ``targets`` is, as :func:`_where` says it."""
    if len(targets) == 1:
        return _where(nb, sections, next(iter(targets)), here)
    secs = list(dict.fromkeys("this section" if sections[t] == sections[here] else f"“{sections[t]}”"
                              for t in sorted(targets)))
    return "one of the code cells in " + _and(secs, "or")


def _and(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def _glue_key(name: str, content: str) -> tuple[str | None, str | None, str]:
    """``(doc, key, fmt)`` of a glue role's content (``[doc::]key[:fmt]``, fmt for glue:text only)."""
    doc, rest = content.split("::", 1) if "::" in content else (None, content)
    fmt = ""
    if name == "glue:text" and ":" in rest:
        rest, fmt = rest.rsplit(":", 1)
    return doc, rest.strip(), fmt


class _Rewriter:
    def __init__(self, nb, name: str | None, index: Index, printing: bool, values: dict | None = None):
        self.nb, self.name, self.index, self.printing = nb, name, index or Index(), printing
        self.values = values or {}
        self.sources = glue_sources(nb)
        self.sections = _sections(nb)
        self.cited: list[str] = []
        self.figures = {c.metadata.get("mystnb", {}).get("figure", {}).get("name"): i
                        for i, c in enumerate(nb.cells) if c.cell_type == "code"}

    # one role
    def role(self, name: str, content: str, here: int, glued: list):
        if name in GLUE_ROLES:
            doc, key, fmt = _glue_key(name, content)
            if not key or "`" in key:
                return None  # malformed: left as it is, raw_roles reports it
            text = self.value(name, doc, key, fmt)
            glued.append((doc, key, text is not None))
            return f"**[`{key}`]**" if text is None else text
        text, _, target = content.rpartition("<")
        explicit = text.strip() if target.endswith(">") and text.strip() else None
        label = target[:-1].strip() if explicit else content.strip()
        if name == "term":
            return explicit or label
        if name == "doc":
            return explicit or label.rsplit("/", 1)[-1]
        if name == "ref":
            where, title = self.index.labels.get(label, (None, None))
            text = explicit or title or f"the section “{label}”"
            if where and where != self.name and where.endswith(".ipynb"):
                return f"[{text}]({where})"
            return text
        if name == "numref":
            if label in self.figures:
                return _where(self.nb, self.sections, self.figures[label], here, "figure")
            return explicit.replace("%s", "").strip() if explicit else f"the figure “{label}”"
        if name == "eq":
            return f"({label})"
        if name in CITE_ROLES:
            keys = [k.strip() for k in content.split(",") if k.strip()]
            self.cited += [k for k in keys if k not in self.cited]
            refs = [self.index.bib.get(k, (None, None, None)) for k in keys]
            if name.endswith(":t"):
                return "; ".join(f"{a} ({y})" if a else f"[{k}]" for k, (a, y, _) in zip(keys, refs))
            if all(a for a, _, _ in refs):
                return "(" + "; ".join(f"{a}, {y}" for a, y, _ in refs) + ")"
            return "[" + ", ".join(keys) + "]"
        return None

    def value(self, role: str, doc, key: str, fmt: str) -> str | None:
        """The text the website shows for a glue:text role, from the build's values, or None."""
        data = {}
        if doc is None and role == "glue:text" and self.sources[key]:  # glued by a cell students have
            data = self.values.get(key, {}).get("data", {})
        if "text/plain" not in data:
            return None
        from myst_nb.core.variables import format_plain_text

        try:
            return format_plain_text(data["text/plain"], fmt or "s")
        except Exception:  # as on the website, a value that cannot be formatted is not shown
            return None

    def note(self, glued: list, here: int) -> str:
        """The sentence that ends a cell with glued values: which code cell gives each value."""
        verb = "printed" if self.printing else "computed"
        items = list(dict.fromkeys(glued))

        def where(pairs):
            by_place = {}
            for doc, key in pairs:
                if doc:
                    place = f"from the notebook {doc}"
                elif not self.sources[key]:
                    place = "not computed in this version of the notebook"
                else:
                    place = f"{verb} by {_where_any(self.nb, self.sections, self.sources[key], here)}"
                by_place.setdefault(place, []).append(f"`{key}`")
            return "; ".join(f"{_and(keys if len(keys) <= 4 else keys[:3] + [f'{len(keys) - 3} others'])} "
                             f"{'is' if len(keys) == 1 else 'are'} {place}" for place, keys in by_place.items())

        missing = [(d, k) for d, k, known in items if not known]
        filled = [(d, k) for d, k, known in items if known]
        out = []
        if missing:
            out.append("The values in **[brackets]** appear when you run the notebook: " + where(missing) + ".")
        if filled:
            out.append(("The other numbers" if missing else "The numbers in this cell")
                       + " were computed when the book was built; running the notebook computes them again: "
                       + where(filled) + ".")
        return "*" + " ".join(out) + "*"

    def glue_directive(self, seg: str, directive, here: int, glued: list) -> str:
        kind, arg = directive
        lines = seg.split("\n")
        body = [ln for ln in lines[1:-1] if not re.match(r"^\s*:[\w\-]+:", ln)]
        key = arg.split("::")[-1].strip() or "?"
        glued.append((None, key, False))
        what = "figure" if kind == "glue:figure" else "value"
        text = f"**[{what} `{key}`]**"
        caption = self.md("\n".join(body).strip(), here, glued)
        return text + (f" {caption}" if caption else "")

    def md(self, text: str, here: int, glued: list) -> str:
        return _inline(text, lambda name, content: self.role(name, content, here, glued), self.links)

    def links(self, text: str) -> str:
        """``[text](label)``, MyST's link to a target: a link to the chapter, or just the text."""
        def repl(m):
            where, _ = self.index.labels.get(m.group("label"), (None, None))
            if where and where != self.name and where.endswith(".ipynb"):
                return f"[{m.group('text')}]({where})"
            return m.group("text")
        return re.sub(r"(?<!!)\[(?P<text>[^\[\]]+)\]\((?P<label>[\w\-:.]+)\)",
                      lambda m: repl(m) if m.group("label") in self.index.labels else m.group(0), text)

    def cell(self, source: str, here: int) -> str:
        glued, out = [], []
        for kind, seg, info in _segments(source):
            if kind == "glue":
                out.append(self.glue_directive(seg, info, here, glued))
            elif kind == "open" and info[0] in PLAIN_DIRECTIVES:
                out.append(self.references() if info[0] == "footbibliography" else PLAIN_DIRECTIVES[info[0]])
            elif kind == "open" and info[0] == "mermaid":
                out.append(re.sub(r"\{mermaid\}.*$", "mermaid", seg.split("\n")[0]))  # JupyterLab draws these
            elif kind == "close" and info in PLAIN_DIRECTIVES:
                out.append(None)
            elif kind == "md":
                seg = "\n".join(ln for ln in seg.split("\n") if not TARGET.match(ln))
                out.append(self.md(seg, here, glued))
            else:
                out.append(seg)
        text = "\n".join(x for x in out if x is not None)
        text = re.sub(r"\A\n+", "", text)
        if glued:
            text = text.rstrip("\n") + "\n\n" + self.note(glued, here)
        return text

    def references(self) -> str:
        """What ``{footbibliography}`` shows: the references cited so far in the notebook."""
        items = []
        for k in self.cited:
            a, y, t = self.index.bib.get(k, (None, None, None))
            items.append(f"- {a} ({y}). *{t}*." if a else f"- [{k}]")
        return "\n".join(items)


def plain_notebook(nb, name: str | None = None, index: Index | None = None, printing: bool = False,
                   values: dict | None = None):
    """Return a copy of ``nb`` whose Markdown cells read without Jupyter Book (module doc).

    ``name`` is the notebook's file name (to tell a link to another chapter from a section of
    this one); ``index`` comes from :func:`index_notebooks`; ``printing`` says the notebook's
    ``glue`` calls print what they glue (:func:`student_glue_source`), so the note says
    "printed by" rather than "computed by"; ``values`` (from :func:`built_values`) fills each
    glue:text role with the text the website shows instead of a placeholder.
    """
    nb = copy.deepcopy(nb)
    rw = _Rewriter(nb, name, index, printing, values)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            cell.source = rw.cell(cell.source, i)
    return nb


def student_glue_source(code: str) -> str:
    """``from myst_nb import glue`` in a code cell becomes the import of
    :func:`ptutils.classroom.glue.glue`, which glues as before and prints ``name = value``."""
    return GLUE_IMPORT.sub(lambda m: m.group("indent") + SHIM_IMPORT, code)


def built_values(build_dir: Path, nb_path: Path, root: Path | None = None) -> tuple[dict | None, str]:
    """The values a Jupyter Book build glued in notebook ``nb_path``, if they are still its values.

    Read from ``<build_dir>/jupyter_execute/<notebooks dir>/<name>.glue.json``. They are used
    only when the executed copy there has the same code cells as ``nb_path`` and the build's
    library key (``<build_dir>/.ptutils_hash``, written by ``tools/build_cache.py``) is the
    library's key now, so the values are what this code computes in full mode. Returns
    ``(values, "")`` or ``(None, why not)``.
    """
    import json

    import nbformat

    nb_path, build_dir = Path(nb_path), Path(build_dir)
    root = Path(root) if root is not None else nb_path.resolve().parent.parent
    executed = build_dir / "jupyter_execute" / nb_path.parent.name / nb_path.name
    glue_file = executed.with_suffix(".glue.json")
    if not (executed.is_file() and glue_file.is_file()):
        return None, f"no build output {glue_file}"

    def code(nb):
        return [c.source for c in nb.cells if c.cell_type == "code"]

    if code(nbformat.read(executed, as_version=4)) != code(nbformat.read(nb_path, as_version=4)):
        return None, "its code changed since the build"
    tool = root / "tools" / "build_cache.py"
    key_file = build_dir / ".ptutils_hash"
    if not (tool.is_file() and key_file.is_file()):
        return None, "the build's library key cannot be checked"
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ptutils_build_cache", tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if mod.library_key(root) != key_file.read_text().strip():
        return None, "the library or its environment (installed packages, PTUTILS_* switches) changed since the build"
    return json.loads(glue_file.read_text()), ""
