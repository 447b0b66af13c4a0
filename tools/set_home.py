"""The book's public home, kept in one place: ``repository.url`` in ``_config.yml``.

    python tools/set_home.py                                   # check that every place agrees
    python tools/set_home.py https://github.com/OWNER/REPO     # publish: set the home everywhere
    python tools/set_home.py --none                            # no public home (the default)

Two things depend on the home, and both are written from ``_config.yml`` by this tool:

- the website's header buttons: the repository button and the "open in Colab" launch button
  exist only when there is a home (a button that leads to a 404 is worse than none);
- the first code cell of every chapter (hidden on the website, skipped under test), which on
  Colab installs ``ptutils`` from the home with ``%pip``. Colab opens a notebook on its own,
  with no ``_config.yml`` beside it, so the URL is written into the cell; with no home the cell
  stops with a message that says how to install from a wheel instead.

``tests/test_book.py`` fails when a notebook's Colab cell, or any page, names another home.
Exit status: 0 done (or everything agrees), 1 the check found disagreements, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "_config.yml"
COLAB_URL = "https://colab.research.google.com"
HOME_RE = re.compile(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")

COLAB_CELL = '''# On Colab only: install ptutils and what the book needs (this cell does nothing elsewhere).
import sys

BOOK_HOME = {home_q}  # the book's repository: _config.yml's repository.url (tools/set_home.py writes it)
if "google.colab" in sys.modules:
    if not BOOK_HOME:
        raise RuntimeError("This copy of the book has no public home to install ptutils from. Build a wheel "
                           "in a clone (`make wheel`), upload dist/ptutils-*.whl to Colab and run "
                           "`%pip install ptutils-*.whl`, then run the chapter again.")
    %pip install -q "ptutils @ git+{{BOOK_HOME}}"'''


def check_url(url: str) -> str:
    """Return ``url`` if it can be the book's home (``https://github.com/OWNER/REPO``), else raise."""
    if url and not HOME_RE.fullmatch(url):
        raise ValueError(f"{url!r} is not a GitHub repository URL of the form https://github.com/OWNER/REPO "
                         "(no trailing slash or .git): Colab's launch button and `pip install git+` need one")
    return url


def _config_lines(root: Path) -> list[str]:
    path = root / CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run this from the book's repository")
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _find(lines: list[str], section: str, key: str) -> int:
    """Index of ``  key:`` inside the top-level ``section:`` block of _config.yml."""
    inside = False
    for i, line in enumerate(lines):
        if re.match(r"\S", line):
            inside = line.startswith(f"{section}:")
        elif inside and re.match(rf"\s+{key}:", line):
            return i
    raise ValueError(f"{CONFIG} has no {section}.{key} entry")


def _value(line: str) -> str:
    raw = line.split(":", 1)[1].split("#", 1)[0].strip()
    return raw.strip("\"'")


def read_home(root: Path = ROOT) -> str:
    """The book's home as ``_config.yml`` states it ("" for none)."""
    lines = _config_lines(root)
    return check_url(_value(lines[_find(lines, "repository", "url")]))


def colab_cell(home: str) -> str:
    """The source of every chapter's first code cell for this home."""
    return COLAB_CELL.format(home_q=json.dumps(check_url(home)))


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("*.ipynb"))


def _first_code_cell(nb: dict, path: Path) -> dict:
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            return cell
    raise ValueError(f"{path}: no code cell, so no Colab cell")


def _source(cell: dict) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def problems(root: Path = ROOT) -> list[str]:
    """Every place that disagrees with ``_config.yml``'s home (an empty list when all agree)."""
    home = read_home(root)
    lines = _config_lines(root)
    found = []
    colab = _value(lines[_find(lines, "launch_buttons", "colab_url")])
    button = _value(lines[_find(lines, "html", "use_repository_button")]).lower()
    if colab != (COLAB_URL if home else ""):
        found.append(f"{CONFIG}: launch_buttons.colab_url is {colab!r}; with home {home!r} it must be "
                     f"{COLAB_URL if home else ''!r}")
    if button != ("true" if home else "false"):
        found.append(f"{CONFIG}: html.use_repository_button is {button}; with home {home!r} it must be "
                     f"{'true' if home else 'false'}")
    want = colab_cell(home)
    for path in notebooks(root):
        cell = _first_code_cell(json.loads(path.read_text(encoding="utf-8")), path)
        if _source(cell) != want:
            found.append(f"{path.relative_to(root)}: the Colab cell is not the one for home {home!r} "
                         "(run tools/set_home.py with the home)")
    return found


def set_home(url: str, root: Path = ROOT) -> None:
    """Write ``url`` ("" for none) into _config.yml, its buttons, and every chapter's Colab cell."""
    url = check_url(url)
    lines = _config_lines(root)
    for section, key, value in (("repository", "url", f'"{url}"'),
                                ("launch_buttons", "colab_url", f'"{COLAB_URL if url else ""}"'),
                                ("html", "use_repository_button", "true" if url else "false")):
        i = _find(lines, section, key)
        indent = re.match(r"\s*", lines[i]).group(0)
        comment = lines[i].split("#", 1)[1].rstrip("\n") if "#" in lines[i].split(":", 1)[1] else ""
        lines[i] = f"{indent}{key}: {value}" + (f"  #{comment}" if comment else "") + "\n"
    (root / CONFIG).write_text("".join(lines), encoding="utf-8")
    want = colab_cell(url)
    for path in notebooks(root):
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        cell = _first_code_cell(nb, path)
        if _source(cell) != want:
            cell["source"] = want.splitlines(keepends=True)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="tools/set_home.py", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("url", nargs="?", help="the book's repository, https://github.com/OWNER/REPO")
    group.add_argument("--none", action="store_true", help="the book has no public home")
    args = parser.parse_args(argv)
    try:
        if args.url is None and not args.none:
            found = problems(root)
            for line in found:
                print(line, file=sys.stderr)
            home = read_home(root)
            print(f"home: {home or '(none)'}; {len(found)} disagreement(s)")
            return 1 if found else 0
        set_home("" if args.none else args.url, root)
        print(f"home set to {read_home(root) or '(none)'} in {CONFIG} and {len(notebooks(root))} notebooks")
        return 0
    except (ValueError, FileNotFoundError) as err:
        print(f"set_home: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
