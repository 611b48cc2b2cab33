"""Two fixes to the website's pages, loaded by _config.yml (``sphinx.local_extensions``).

* Sphinx 7.4 writes every inline script that an extension adds after the builder has started
  twice (once registered with the file name ``None``, once with ``""``): sphinx-thebe's
  ``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been declared"
  on every page. Each page keeps one copy of each script.
* pydata-sphinx-theme logs "Got invalid theme mode" on every page when no default colour mode
  is given; the book's is "auto" (the reader's system setting).
* A widget on a static page is dead: it renders from the saved widget state and looks live, but
  nothing answers its clicks (and with no network it is an empty, 0 px output). The site never
  shows a widget view: each output falls back to its next representation, a static ``text/html``
  or ``text/plain`` one (the teleoperation panel of chapter 5 carries a picture of itself and a
  link to run the chapter in Colab; a tqdm progress bar its text bar).

tests/test_site_browser.py opens every page in Chromium and fails on either error.
"""

from __future__ import annotations


def _script_key(js) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    return (getattr(js, "filename", None) or "", getattr(js, "priority", 500),
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # the builder restores its own list after each page


def default_colour_mode(app, config) -> None:
    config.html_context.setdefault("default_mode", "auto")


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def no_widget_views(app, config) -> None:
    overrides = list(getattr(config, "nb_mime_priority_overrides", None) or [])
    config.nb_mime_priority_overrides = [*overrides, ("html", WIDGET_VIEW, None)]


def setup(app):
    app.connect("config-inited", default_colour_mode)
    app.connect("config-inited", no_widget_views)
    app.connect("html-page-context", dedupe_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
