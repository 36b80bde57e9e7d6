"""HTML rendering of a report: one self-contained file (inline CSS and SVG, no script, no external URL)
with the summary first, notes, a chart of drift findings over the last runs, then a table per host and
each file change shown as a diff. Every summary number carries `data-key`, so a test can read it back
from the rendered page."""

from __future__ import annotations

from jinja2 import Environment

from opsrun.reports.model import Report

_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

TEMPLATE = _env.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ r.title }}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #1d2330; padding: 0 1em; }
  h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 2em; }
  .status { display: inline-block; padding: .15em .6em; border-radius: .3em; font-weight: 600; color: #fff; }
  .ok { background: #2f7d32; } .bad { background: #b3261e; } .warn { background: #9a6700; }
  table { border-collapse: collapse; width: 100%; margin: .6em 0; }
  th, td { border: 1px solid #d6dae3; padding: .35em .6em; text-align: left; vertical-align: top; }
  th { background: #f1f3f7; }
  table.summary td { font-size: 1.3em; font-weight: 600; }
  td.failed, td.error, td.will_change, td.verify_failed { color: #b3261e; font-weight: 600; }
  td.passed, td.unchanged { color: #2f7d32; } td.unknown, td.skipped { color: #9a6700; }
  pre.diff { background: #f7f8fa; border: 1px solid #d6dae3; padding: .6em; overflow-x: auto; }
  pre.diff .add { color: #116329; background: #dafbe1; display: block; }
  pre.diff .del { color: #82071e; background: #ffebe9; display: block; }
  pre.diff .hunk { color: #6639ba; display: block; }
  .muted { color: #5b6475; } ul.notes li { margin: .2em 0; }
  td.PASS { color: #2f7d32; font-weight: 600; } td.FAIL { color: #b3261e; font-weight: 600; }
  td.SKIP { color: #9a6700; }
  .first-line { background: #b3261e; color: #fff; padding: .5em .8em; font-weight: 700; border-radius: .3em; }
</style>
</head>
<body>
{% if r.first_line %}<p class="first-line" data-key="first_line">{{ r.first_line }}</p>{% endif %}
<h1>{{ r.title }}</h1>
<p><span class="status {{ status_class }}" data-key="status">{{ r.status }}</span>
  <span class="muted">generated {{ r.generated }}{% if r.run_id is not none %}, run {{ r.run_id }}{% endif %}</span></p>

<table class="summary">
  <tr>{% for key in r.summary %}<th>{{ key }}</th>{% endfor %}</tr>
  <tr>{% for key, value in r.summary.items() %}<td data-key="{{ key }}">{{ value }}</td>{% endfor %}</tr>
</table>

{% if r.notes %}
<ul class="notes">{% for note in r.notes %}<li>{{ note }}</li>{% endfor %}</ul>
{% endif %}

{% for title, header, rows in r.tables %}
<h2>{{ title }}</h2>
<table>
  <tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
  {% for row in rows %}<tr>{% for c in row %}<td class="{{ c }}">{{ c }}</td>{% endfor %}</tr>
  {% endfor %}
</table>
{% endfor %}

{% if r.trend %}
<h2>{{ r.trend_label }}, last {{ r.trend | length }} runs</h2>
<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="drift findings per run" data-key="trend"
     width="{{ chart.width }}" height="{{ chart.height + 40 }}" viewBox="0 0 {{ chart.width }} {{ chart.height + 40 }}">
  <line x1="0" y1="{{ chart.height }}" x2="{{ chart.width }}" y2="{{ chart.height }}" stroke="#5b6475"/>
  {% for bar in chart.bars %}
  <rect x="{{ bar.x }}" y="{{ bar.y }}" width="{{ chart.bar }}" height="{{ bar.h }}"
        fill="{{ '#b3261e' if bar.n else '#2f7d32' }}"><title>{{ bar.when }}: {{ bar.n }}</title></rect>
  <text x="{{ bar.x + chart.bar / 2 }}" y="{{ bar.y - 4 }}" font-size="11" text-anchor="middle">{{ bar.n }}</text>
  <text x="{{ bar.x + chart.bar / 2 }}" y="{{ chart.height + 14 }}" font-size="9" text-anchor="middle"
        fill="#5b6475">{{ bar.label }}</text>
  {% endfor %}
</svg>
{% endif %}

{% if r.log %}
<h2>Drill log</h2>
<pre class="diff">{% for line in r.log %}{{ line }}
{% endfor %}</pre>
{% endif %}

{% for host in r.hosts %}
<h2 id="host-{{ host }}">{{ host }}</h2>
{% set items = r.for_host(host) %}
{% if not items %}
<p class="muted">Nothing to report.</p>
{% else %}
<table>
  <tr><th>what</th><th>verdict</th><th>note</th><th>detail</th></tr>
  {% for i in items %}
  <tr><td>{% if i.group %}<span class="muted">{{ i.group }}:</span> {% endif %}{{ i.name }}</td>
      <td class="{{ i.verdict }}">{{ i.verdict }}</td><td>{{ i.note }}</td>
      <td>{% for line in i.detail[:8] %}<code>{{ line }}</code><br>{% endfor %}</td></tr>
  {% endfor %}
</table>
{% for i in items if i.diff %}
<p><strong>{{ i.name }}</strong></p>
<pre class="diff">{% for line in i.diff %}<span class="{{ line_class(line) }}">{{ line }}</span>
{% endfor %}</pre>
{% endfor %}
{% endif %}
{% endfor %}
</body>
</html>
"""
)


def _line_class(line: str) -> str:
    if line.startswith("+ "):
        return "add"
    if line.startswith("- "):
        return "del"
    if line.startswith("@@") or line.startswith("Will "):
        return "hunk"
    return "ctx"


def _chart(trend: list[tuple[str, int]]) -> dict[str, object]:
    bar, gap, height = 28, 12, 120
    top = max([n for _, n in trend] + [1])
    bars = []
    for k, (when, n) in enumerate(trend):
        h = round(height * n / top) if n else 2
        bars.append({"x": gap + k * (bar + gap), "y": height - h, "h": h, "n": n, "when": when, "label": when[5:10]})
    return {"bar": bar, "height": height, "width": gap + len(trend) * (bar + gap), "bars": bars}


def render(report: Report) -> str:
    status_class = {"success": "ok", "passed": "ok", "clean": "ok", "drift": "warn"}.get(report.status, "bad")
    return TEMPLATE.render(r=report, status_class=status_class, chart=_chart(report.trend), line_class=_line_class)
