"""Keep the website self-contained: drop scripts this book does not use.

Jupyter Book always loads sphinx-thebe, whose configuration script is added twice
in this Sphinx version (a JavaScript error on every page: "Identifier
'THEBE_JS_URL' has already been declared") and points at a CDN. The book does not
offer live code (``launch_buttons.thebe: false``), so the scripts are removed, and
any other script that appears twice on a page is de-duplicated.
"""


def _drop_unused_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        body = js.attributes.get("body", "") if hasattr(js, "attributes") else ""
        name = str(js.filename) if hasattr(js, "filename") else str(js)
        if "thebe" in name.lower() or "THEBE_JS_URL" in body:
            continue
        key = (name, body)
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _drop_unused_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
