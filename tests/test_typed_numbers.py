"""No number typed by hand in the prose: every numeral a reader sees in a chapter's Markdown
or a book page comes from the computation (a glue role), or is one of the things that are
not results: math, code, a citation's published figure, a year, a chapter/section/equation
number, a link, a name that contains a digit (GPT-2, F1, L2, MiniLM-L6), or a phrase in the
allow-list below, each with its reason.

The scanner removes what may hold digits, then reports every numeral left in the prose.
Each hit is fixed by gluing the value from the cell that computes it, or by rewording the
sentence so it does not state a measured number. The allow-list is for definitions and fixed
facts only (hardware, a published rule with its citation), never for a result.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.md"))

#: page (path relative to the repository) -> exact phrase in the prose -> why it is not a result.
#: A phrase here must occur in that page (a stale entry fails the test), and only the numerals
#: inside the phrase are allowed, nowhere else on the page.
ALLOWED = {
    "notebooks/01_background.ipynb": {
        "licence (Apache 2.0 here)": "the licence's name and version, not a quantity",
    },
    "notebooks/14_applications.ipynb": {
        "wav2vec 2.0": "a model's name (wav2vec 2.0), not a quantity",
    },
    "notebooks/16_scaling_out.ipynb": {
        "The 7B model of the table": "a row label of the memory table (a model size the cell takes as input)",
        "The 70B model still needs": "a row label of the memory table (a model size the cell takes as input)",
        "lets a 7B model train": "the same row label, in the summary",
        "for the 70B model on a": "the same row label, in an exercise's answer",
    },
    "book/errata.md": {
        "An Image Data Set of 32 Million 3D Faces": "the wrong title source article 001 gives, quoted as the erratum",
    },
    "book/glossary.md": {
        "in 95 % of repeated experiments": "the definition of a 95 % interval's coverage, not a result",
    },
}

#: Book pages cannot glue (a glue role reads its notebook's outputs), so a design constant
#: typed in a page is checked against the library instead: page -> phrase -> the value it must
#: show (formatted with thousands separators). If the library changes, the page fails.
def _rt_polarity_size():
    from ptutils.data import RT_POLARITY_FILES
    return sum(n for _, n, _ in RT_POLARITY_FILES.values())


def _test_size():
    from ptutils.data import RT_POLARITY_TEST_SIZE
    return RT_POLARITY_TEST_SIZE


def _grader_cell_timeout():
    import inspect

    from ptutils.classroom.grade import grade_one
    return inspect.signature(grade_one).parameters["cell_timeout"].default


def _grader_limit(name):
    from ptutils.classroom.sandbox import Limits
    return getattr(Limits(), name)


LIBRARY_CONSTANTS = {
    "book/intro.md": {
        "(10,662 movie-review snippets": _rt_polarity_size,
        "a fixed test set of 2,000 sentences": _test_size,
    },
    "book/faq.md": {
        "paired on the same 2,000": _test_size,
        "a fixed 2,000-sentence test set": _test_size,
    },
    "book/glossary.md": {
        "one fixed set of 2,000 sentences": _test_size,
    },
    "book/for-teachers.md": {
        "default 120 s": _grader_cell_timeout,
        "| `--total-timeout` | 1,800 s |": lambda: _grader_limit("total_timeout"),
        "| `--wall-margin` | 60 s |": lambda: _grader_limit("wall_margin_s"),
        "| `--memory-mb` | 8,192 MB |": lambda: _grader_limit("memory_mb"),
        "| `--processes` | 256 |": lambda: _grader_limit("processes"),
        "| `--cpu-seconds` | 1,800 CPU s |": lambda: _grader_limit("cpu_s"),
        "| `--file-mb` | 64 MB |": lambda: _grader_limit("file_mb"),
        "| `--tmp-mb` | 512 MB |": lambda: _grader_limit("tmp_mb"),
        "| `--output-mb` | 1 MB |": lambda: int(_grader_limit("output_mb")),
        "| `--answer-mb` | 16 MB |": lambda: int(_grader_limit("answer_mb")),
    },
}

# --- what is removed before numerals are looked for -------------------------------------------

#: Fenced blocks whose body is code or math, not prose: ```python, ```{code-cell}, ```{math}, ...
#: (a directive such as ```{note} or ```{exercise} holds prose and is scanned).
_CODE_FENCE_INFO = re.compile(
    r"^$|^(?!\{)|^\{(code-cell|code-block|code|sourcecode|literalinclude|math|mermaid|"
    r"bibliography|autofunction|autoclass|automodule|automethod|autodata|eval-rst|raw|toctree|"
    r"list-table|csv-table|glue:figure|glue:math|glue:any)\}"
)
_FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})(.*)$")
#: A role and its content: {glue:text}`name:.1%`, {cite:p}`key`, {ref}`lbl`, {math}`x^2`, ...
#: Every role's content is a name, a key, a target or math, so all roles are removed.
_ROLE = re.compile(r"\{[A-Za-z][\w:+-]*\}`[^`]*`")
_CITE_ROLE = re.compile(r"\{(?:cite|footcite)(?::\w+)?\}`[^`]*`")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.S)
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$")
_TEX_MATH = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.S)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")
_LINK_TARGET = re.compile(r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")  # [text](target) -> keep text
_REF_LINK_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M)
_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+|<[^>\s]+@[^>\s]+>")
_LABEL = re.compile(r"^\s*\([\w:.-]+\)=\s*$", re.M)
_FOOTNOTE_REF = re.compile(r"\[\^[\w-]+\]")
_DIRECTIVE_OPTION = re.compile(r"^\s*:[\w-]+:.*$", re.M)
_PATH = re.compile(r"(?<![\w/.])(?=[\w./-]*[A-Za-z])(?:[\w.-]+/)+[\w.-]+")  # images/fig-1.png (not 80/20)
_FILE = re.compile(r"\b[\w-]+\.(?:ipynb|md|py|png|svg|jpg|json|txt|bib|yml|toml|npz|pt|csv)\b")

# --- what a numeral is, and the numerals that are not measurements ------------------------------

_NUMBER = re.compile(r"(?<![\w.,])[-+−]?\d+(?:[.,]\d+)*")
#: A digit that is part of a name: GPT-2, F1, L2, MiniLM-L6, v2, int8, 2D, top-5, k-NN-10.
_NAME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9]*[-_]?$")
_NAME_AFTER = re.compile(r"^(?:[A-Za-z_]+\d*|-(?:NN|D|bit|nearest|gram)\b)")
#: A numeral followed by a unit or multiplier letter is a quantity, not a name: 10k, 3B, 2x, 5s.
_QUANTITY_SUFFIX = re.compile(r"^(?:[kKMBGT]|x|s|ms|min|h|GB|MB|GiB|MiB|KB|px|pt|em|th|st|nd|rd)\b")
_YEAR = re.compile(r"^(?:1[89]|20)\d\d[a-z]?$")
#: ... unless a count noun follows: "2000 sentences", "a 2000-sentence test set" are counts.
_COUNT_NOUN = re.compile(
    r"^\s*[-–]?\s*(?:[a-z]+[-\s])?(?:sentences?|examples?|tokens?|images?|words?|steps?|epochs?|"
    r"labels?|documents?|parameters?|pairs?|quer(?:y|ies)|items?|samples?|iterations?|digits?|"
    r"questions?|runs?|draws?|seeds?|rows?|columns?|dimensions?|messages?|stories|articles?)\b")
#: "chapter 7", "chapters 1, 6 and 7", "ch. 3", "§3.1", "section 2.4", "equation 5", "article 002".
_REFERRING_WORD = (
    r"(?:[Cc]hapters?|[Cc]h\.|[Ss]ections?|[Ss]ec\.|§+|[Ee]quations?|[Ee]qs?\.|[Aa]rticles?|"
    r"[Ff]igures?|[Ff]ig\.|[Tt]ables?|[Ee]xercises?|[Aa]ppendix|[Pp]arts?|[Ii]ssues?|[Ss]teps?|"
    r"[Ll]ines?|[Cc]ells?|[Pp]ages?|[Pp]p?\.|[Pp]ython|PyTorch|[Vv]ersions?)"
)
_REFERENCE = re.compile(
    _REFERRING_WORD + r"\s*\d+(?:\.\d+)*(?:\s*(?:,|–|-|—|and|or|to|&)\s*(?:§\s*)?\d+(?:\.\d+)*)*"
)
#: "1." opening an item of a numbered list.
_LIST_MARKER = re.compile(r"^\s*\d+[.)](?=\s)", re.M)
#: The level of an interval or a test is part of the method's definition: "95 % interval", "5 % level".
_LEVEL = re.compile(r"\b(?:90|95|99)\s*%(?=\s+(?:[\w-]+\s+){0,2}(?:intervals?|confidence|CIs?)\b)"
                    r"|(?<=central )(?:90|95|99)\s*%"
                    r"|\b(?:1|5|10)\s*%(?=\s+(?:significance\s+)?level\b)")
#: The source articles are numbered 000-004 ("000 §3", "001 §5, 004 §7").
_ARTICLE_ID = re.compile(r"(?<![\d.,])00\d(?=\s*(?:§|,|\)|$))", re.M)
#: A numeral in a sentence that cites a source is the source's published figure.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])|\n\s*\n")


def _strip_fences(text):
    """Blank out fenced code/math blocks and exercise statements, keeping every offset.

    A directive that holds prose (a note, a solution, a figure's caption) is kept, only its
    opening line (name and argument, e.g. a figure's path) is blanked. The statement of an
    exercise (between ``exercise-start`` and ``exercise-end``) is blanked: the numbers an
    exercise sets are its specification, not a result. Solutions are scanned.
    """
    out, fence, in_exercise = [], None, False
    for line in text.split("\n"):
        blank = " " * len(line)
        if fence is not None:
            mark, is_code, info = fence
            stripped = line.strip()
            if stripped and set(stripped) == {mark[0]} and len(stripped) >= len(mark):
                fence = None
                if info.startswith("{exercise-start}"):
                    in_exercise = True
                out.append(blank)
            else:
                out.append(blank if is_code else line)
            continue
        m = _FENCE_OPEN.match(line)
        if m and not (m.group(2)[0] == ":" and not m.group(3).strip()):
            info = m.group(3).strip()
            if info.startswith("{exercise-end}"):
                in_exercise = False
            is_code = bool(_CODE_FENCE_INFO.match(info)) or info.startswith("{exercise}")
            fence = (m.group(2), is_code, info)
            out.append(blank)
            continue
        out.append(blank if in_exercise else line)
    return "\n".join(out)


def _blank(text, pattern, keep=""):
    return pattern.sub(lambda m: keep + " " * (len(m.group(0)) - len(keep)), text)


def typed_numbers(markdown):
    """The numerals typed in ``markdown``'s prose, each with the sentence it stands in.

    Returns a list of ``(numeral, context)`` pairs, in order.
    """
    text = _blank(markdown, _HTML_COMMENT)
    text = _strip_fences(text)
    for pat in (_DIRECTIVE_OPTION, _LABEL, _REF_LINK_DEF, _DISPLAY_MATH, _TEX_MATH):
        text = _blank(text, pat)
    # Citation sentences: numerals before a citation role in the same sentence are the source's.
    sentences = []
    pos = 0
    for m in _SENTENCE_END.finditer(text + "\n\n"):
        sentences.append((pos, m.start()))
        pos = m.end()
    cites = [m.start() for m in _CITE_ROLE.finditer(text)]
    text = _blank(text, _ROLE)
    # Code spans after roles (a role's content is itself a backtick span).
    text = _blank(text, _CODE_SPAN)
    for pat in (_INLINE_MATH, _URL, _FOOTNOTE_REF, _HTML_TAG, _PATH, _FILE, _ARTICLE_ID, _REFERENCE,
                _LIST_MARKER, _LEVEL):
        text = _blank(text, pat)
    text = _LINK_TARGET.sub(lambda m: "]" + " " * (len(m.group(0)) - 1), text)
    hits = []
    for m in _NUMBER.finditer(text):
        num = m.group(0)
        before, after = text[: m.start()], text[m.end():]
        if _NAME_BEFORE.search(before[-20:]):
            continue  # GPT-2, F1, L2, MiniLM-L6, int8
        if _NAME_AFTER.match(after) and not _QUANTITY_SUFFIX.match(after):
            continue  # 2D, 3rd-party names such as 1cycle
        if _YEAR.match(num) and not _COUNT_NOUN.match(after):
            continue  # a year, not a count
        if any(s <= m.start() < e and any(s <= c < e for c in cites) for s, e in sentences):
            continue  # a published figure: the sentence cites its source
        context = re.sub(r"\s+", " ", markdown_context(markdown, text, m.start(), m.end()))
        hits.append((num, context))
    return hits


def markdown_context(original, blanked, start, end):
    """The original text around a hit (the blanked text keeps the original's offsets)."""
    return original[max(0, start - 60): end + 40]


def markdown_cells(path):
    """(where, markdown) for each Markdown cell and figure caption of a notebook, or a whole .md page."""
    if path.suffix == ".md":
        text = path.read_text(encoding="utf-8")
        if text.startswith("---\n"):  # front matter
            end = text.find("\n---", 4)
            text = "\n" * text[:end + 4].count("\n") + text[end + 4:]
        return [("page", text)]
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            src = cell["source"]
            out.append((f"cell {i}", "".join(src) if isinstance(src, list) else src))
        caption = cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("caption")
        if caption:  # a figure's caption is prose too
            out.append((f"cell {i} caption", caption))
    return out


def page_hits(path):
    rel = str(path.relative_to(ROOT))
    allowed = {**ALLOWED.get(rel, {}), **LIBRARY_CONSTANTS.get(rel, {})}
    hits = []
    for where, md in markdown_cells(path):
        spans = []
        for phrase in allowed:
            for m in re.finditer(re.escape(phrase), md):
                spans.append((m.start(), m.end()))
        masked = md
        for s, e in spans:
            masked = masked[:s] + re.sub(r"\d", "#", masked[s:e]) + masked[e:]
        hits += [(where, num, ctx) for num, ctx in typed_numbers(masked)]
    return hits


@pytest.mark.parametrize("path", PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_typed_numbers_in_prose(path):
    hits = page_hits(path)
    assert not hits, (
        f"{path.name}: {len(hits)} numeral(s) typed in the prose; glue each from the computation "
        "({glue:text}`chNN_name`), reword, or (definitions and fixed facts only) allow-list it in "
        "tests/test_typed_numbers.py with a reason:\n"
        + "\n".join(f"  {where}: {num!r} in ...{ctx}..." for where, num, ctx in hits)
    )


def test_allow_list_entries_are_in_use_and_justified():
    for rel, phrases in ALLOWED.items():
        path = ROOT / rel
        assert path.exists(), f"allow-list names a page that does not exist: {rel}"
        text = "\n".join(md for _, md in markdown_cells(path))
        for phrase, reason in phrases.items():
            assert phrase in text, f"{rel}: allow-listed phrase no longer in the page: {phrase!r}"
            assert re.search(r"\d", phrase), f"{rel}: allow-listed phrase has no numeral: {phrase!r}"
            assert len(reason.split()) >= 4, f"{rel}: give the allow-listed phrase a reason: {phrase!r}"


def test_page_constants_match_the_library():
    for rel, phrases in LIBRARY_CONSTANTS.items():
        text = "\n".join(md for _, md in markdown_cells(ROOT / rel))
        for phrase, value in phrases.items():
            assert phrase in text, f"{rel}: checked phrase no longer in the page: {phrase!r}"
            assert f"{value():,}" in phrase, f"{rel}: {phrase!r} no longer states the library's value {value():,}"


# --- glue names: every role in a chapter's Markdown names a value a cell of that chapter glues ---

_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
_GLUE_DIRECTIVE = re.compile(r"^```\{glue(?::\w+)?\}\s+(\S+)", re.M)
_GLUE_CALL = re.compile(r"\bglue\(\s*(f?)([\"'])(.+?)\2")
#: A chapter's helper that glues a family of values under one prefix: glue_diff("ch15_x", r).
_GLUE_HELPER = re.compile(r"\bglue_\w+\(\s*([\"'])(\w+)\1")


def glue_names(nb):
    """(names glued by literal calls, regexes for f-string names, names referenced in Markdown)."""
    glued, patterns, used = set(), [], set()
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code":
            for f, _, name in _GLUE_CALL.findall(src):
                if f:
                    parts = re.split(r"\{[^}]*\}", name)
                    patterns.append(re.compile("^" + r"\w+".join(map(re.escape, parts)) + "$"))
                else:
                    glued.add(name)
            patterns += [re.compile("^" + re.escape(prefix) + r"(?:_\w+)?$") for _, prefix in _GLUE_HELPER.findall(src)]
        elif cell["cell_type"] == "markdown":
            used |= set(_GLUE_ROLE.findall(src)) | set(_GLUE_DIRECTIVE.findall(src))
    return glued, patterns, used


@pytest.mark.parametrize("path", PAGES[: len(sorted((ROOT / "notebooks").glob("*.ipynb")))],
                         ids=lambda p: p.name)
def test_every_glue_role_names_a_glued_value(path):
    glued, patterns, used = glue_names(json.loads(path.read_text(encoding="utf-8")))
    missing = sorted(n for n in used if n not in glued and not any(p.match(n) for p in patterns))
    assert not missing, f"{path.name}: glue roles name values no cell glues: {missing}"
    prefix = f"ch{path.name[:2]}_"
    foreign = sorted(n for n in glued if not n.startswith(prefix))
    assert not foreign, f"{path.name}: glue names must start with {prefix}: {foreign}"


# --- the scanner's own tests: it must catch a typed number, and pass what is not one ---------

@pytest.mark.parametrize("text", [
    "The probe reaches about 70 % on the test sentences.",
    "Fine-tuning trains 22.7M parameters.",
    "ours runs at about 0.6× gensim's speed",
    "tested on the same 2,000 test sentences",
    "a 200-sentence toy set",
    "window 10 beats window 2 on both benchmarks",
    "The CNN reaches 97.2% after 15 epochs.",
    "```{note}\nThe gap is 4.7 points.\n```",
    "```{solution-start} ex\n:class: dropdown\n```\nIt improves by 3 points.",
    "A 95 % accuracy is not an interval.",
    "about a minute per fold, 60 s",
    "- On 8×8 digits",
    "[about 70 % of them](https://example.org/results)",
    "| model | 81.3 % |",
    "an 80/20 split",
    "tested on 2000 sentences",
    "a 2000-sentence test set",
    "on the 2000 test sentences",
])
def test_scanner_catches_typed_numbers(text):
    assert typed_numbers(text), f"not caught: {text!r}"


@pytest.mark.parametrize("text", [
    "The probe reaches {glue:text}`ch01_probe:.1%` on the test sentences.",
    "Its difference is {glue:text}`ch07_diff:+.1f` points, 95 % interval {glue:text}`ch07_int`.",
    "The formula $\\sqrt{0.75 \\cdot 0.25 / n}$ and $$x^2 + 1$$ and {math}`d_k = 64`.",
    "Call `train(epochs=3, lr=3e-3)` first.",
    "```python\nx = 42\n```",
    "See chapter 7, chapters 1, 6 and 7, §3.1, section 2.4 and equation 5; article 000 §3.",
    "BERT-base has 110M parameters {footcite}`devlin2019bert`.",
    "GPT-2, F1, L2, MiniLM-L6, int8, float32, 1-NN, a 2-D mask, 8-bit integers, CIFAR-10.",
    "Published in 2019 and revised in 2021 (Smith, 2020), in 2018 the first.",
    "Read [the docs](https://example.org/v2/page-3) or https://x.org/a/1.",
    "(fig-ch01-labels)=\n{numref}`fig-ch01-labels` and {ref}`ch-4`.",
    "A test at the 5 % level.",
    "```{exercise-start}\n:label: ex\n```\nTrain at learning rates 0.03 and 0.1.\n```{exercise-end}\n```",
    "1. first item\n2. second item",
    "<!-- 42 hidden -->",
])
def test_scanner_passes_what_is_not_a_typed_number(text):
    assert not typed_numbers(text), typed_numbers(text)


def test_allow_list_covers_only_its_phrase(tmp_path, monkeypatch):
    md = "licence (Apache 2.0 here), and it scores 81.2 %."
    page = tmp_path / "notebooks" / "99_x.ipynb"
    page.parent.mkdir()
    page.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": md}]}), encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path, raising=False)
    monkeypatch.setitem(ALLOWED, "notebooks/99_x.ipynb", {"licence (Apache 2.0 here)": "a licence's name and version"})
    hits = page_hits(page)
    assert [num for _, num, _ in hits] == ["81.2"]
