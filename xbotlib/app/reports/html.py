"""The offline HTML of a notebook run and the reports index.

``render_report`` turns an executed notebook into its report: narration and outputs, no code, a header
with the run's status and parameters, and nothing fetched from the internet
(``strip_external_references``). ``build_index`` writes ``reports/index.html``: every run, newest first,
with relative links and the database and world each run read, so the folder can be opened from disk or
served as it is.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from xbotlib.app.reports.records import NotebookRun, atomic_write, relative_path, with_context

_REPORT_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{#- offline: no require.js, MathJax, mermaid or widget scripts from a CDN -#}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}
{{ super() }}
{{ resources.xbot_header }}
{%- endblock body_header -%}
"""
_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>.*?</script\s*>", re.I | re.S)
_EXTERNAL_TAG = re.compile(r"<(?:link|script|iframe)\b[^>]*\b(?:href|src)\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I)
_EXTERNAL_IMPORT = re.compile(r"@import\s+url\(\s*[\"']?(?:https?:)?//[^)]*\)\s*;?|"
                              r"import\s+[^;]*?from\s+[\"'](?:https?:)?//[^\"']*[\"']\s*;?", re.I)


_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def strip_external_references(page: str) -> str:
    """Remove scripts, stylesheets and imports fetched from the internet (outputs such as plotly add them).

    Credits in the theme's CSS comments are dropped too, so ``grep http`` on a report finds only
    links written in the notebook's own text.
    """
    page = _EXTERNAL_SCRIPT.sub("", page)
    page = _EXTERNAL_TAG.sub("", page)
    page = _EXTERNAL_IMPORT.sub("", page)
    return _STYLE_BLOCK.sub(lambda m: m.group(1) + _CSS_COMMENT.sub(
        lambda c: "" if "//" in c.group() else c.group(), m.group(2)) + m.group(3), page)


def render_report(nb, run: NotebookRun) -> str:
    """The HTML report of an executed notebook: narration and outputs, no code, viewable offline."""
    run = with_context(run, nb)
    # imported here: nbconvert takes a second to load and `xbot --help` imports the runner, hence this module
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(extra_loaders=[DictLoader({"xbot_report.html.j2": _REPORT_TEMPLATE})],
                            template_file="xbot_report.html.j2", exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True, anchor_link_text="")
    resources = {"metadata": {"name": f"{run.name} — {run.started_at:%Y-%m-%d %H:%M} UTC"},
                 "xbot_header": _report_header(run)}
    page, _ = exporter.from_notebook_node(nb, resources=resources)
    return strip_external_references(page)


_STATUS_COLOURS = {"ok": "#1a7f37", "failed": "#cf222e", "running": "#9a6700"}


def _database_cell(url: str | None) -> str:
    """The database's name first (what tells runs apart), the full redacted URL after it."""
    if not url:
        return "—"
    match = re.match(r"^[a-z+]+://[^/]*/([^?]+)", url)
    name = match.group(1) if match else url
    return f"<b>{html.escape(name)}</b><br><code>{html.escape(url)}</code>" if name != url else f"<code>{html.escape(url)}</code>"


def _report_header(run: NotebookRun) -> str:
    e = html.escape
    colour = _STATUS_COLOURS.get(run.status, "#57606a")
    params = ", ".join(f"{k}={v!r}" for k, v in run.parameters.items()) or "defaults"
    finished = f" · finished {run.finished_at:%Y-%m-%d %H:%M:%S} UTC" if run.finished_at else ""
    error = (f'<pre style="white-space:pre-wrap;color:{colour};margin:.5em 0 0">{e(run.error)}</pre>'
             if run.error else "")
    return (f'<header style="font-family:sans-serif;padding:.8em 1em;margin:0 0 1em;border-left:6px solid {colour};'
            f'background:#f6f8fa"><div style="font-size:1.2em"><b>{e(run.name)}</b> · status '
            f'<b style="color:{colour}">{e(run.status)}</b> · run {e(str(run.run_id))}</div>'
            f'<div>parameters: <code>{e(params)}</code>{_read_from(run)}</div><div>started {run.started_at:%Y-%m-%d %H:%M:%S} UTC'
            f'{finished} · <a href="../../index.html">all reports</a></div>{error}</header>')


def _read_from(run: NotebookRun) -> str:
    """' · world sandbox · database <url>' as far as the run said what it read."""
    e = html.escape
    return "".join(f" · {name} <code>{e(value)}</code>" for name, value in
                   (("account", run.account), ("world", run.world), ("database", run.database)) if value)


def build_index(reports_dir: Path, runs: list[NotebookRun]) -> Path:
    """Write ``reports_dir/index.html``: every run newest first, status, parameters, relative links."""
    e = html.escape
    rows = []
    for r in sorted(runs, key=lambda r: (r.started_at, r.run_id or 0), reverse=True):
        colour = _STATUS_COLOURS.get(r.status, "#57606a")
        params = ", ".join(f"{k}={v!r}" for k, v in r.parameters.items()) or "defaults"
        took = f"{(r.finished_at - r.started_at).total_seconds():.0f} s" if r.finished_at else ""
        error = f'<div class="err">{e(r.error)}</div>' if r.error else ""
        rows.append(
            f'<tr><td class="when">{r.started_at:%Y-%m-%d %H:%M:%S}</td><td><b>{e(r.name)}</b>{error}</td>'
            f'<td style="color:{colour}"><b>{e(r.status)}</b></td><td><code>{e(params)}</code></td>'
            f'<td>{e(r.world or "—")}</td><td class="db">{_database_cell(r.database)}</td><td>{took}</td>'
            f'<td><a href="{e(relative_path(r.html_path, reports_dir))}">report</a> · '
            f'<a href="{e(relative_path(r.output_path, reports_dir))}">notebook</a></td></tr>')
    body = "\n".join(rows) or '<tr><td colspan="8">no runs yet: try <code>xbot notebook run smoke_check</code></td></tr>'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>xbot reports</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35em .7em; border-bottom: 1px solid #d0d7de; vertical-align: top; }}
th {{ background: #f6f8fa; }}
.err {{ color: #cf222e; font-size: .85em; white-space: pre-wrap; }}
.db {{ font-size: .85em; }}
.when {{ white-space: nowrap; }}
.db code {{ word-break: break-all; }}
</style></head>
<body><h1>xbot reports</h1>
<p>{len(runs)} notebook run(s), newest first. Times are UTC. Each report is the executed notebook without code;
world and database are what the notebook read (passwords hidden).</p>
<table><thead><tr><th>started</th><th>notebook</th><th>status</th><th>parameters</th><th>world</th><th>database</th><th>took</th><th>files</th></tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""
    path = Path(reports_dir) / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, page)
    return path
