"""HTML rendering of a report: one self-contained file (inline CSS and SVG, no script, no external URL)
with the summary first, notes, a chart of drift findings over the last runs, the quiet hosts on one line,
then a table per host that has something to say, each file change shown as a diff with the operation's
commands folded under it (`<details>`, no script). Every summary number carries `data-key`, so a test can
read it back from the rendered page.
"""

from __future__ import annotations

from jinja2 import Environment
from markupsafe import Markup

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
  /* inline on purpose: the newline after each line ends it; a block here added an empty line after each */
  pre.diff .add { color: #116329; background: #dafbe1; }
  pre.diff .del { color: #82071e; background: #ffebe9; }
  pre.diff .hunk { color: #6639ba; }
  details.commands { margin: -.3em 0 1em; } details.commands summary { cursor: pointer; color: #5b6475; }
  p.quiet-hosts { color: #2f7d32; }
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
  {% for line in bar.label %}
  <text x="{{ bar.x + chart.bar / 2 }}" y="{{ chart.height + 14 + 11 * loop.index0 }}" font-size="9"
        text-anchor="middle" fill="#5b6475" class="label">{{ line }}</text>
  {% endfor %}
  {% endfor %}
</svg>
{% endif %}

{% if r.log %}
<h2>Drill log</h2>
<pre class="diff">{% for line in r.log %}{{ line }}
{% endfor %}</pre>
{% endif %}

{% if r.quiet_line() %}
<p class="quiet-hosts" data-key="quiet_hosts">{{ r.quiet_line() }}</p>
{% endif %}
{% for host in r.loud_hosts() %}
<h2 id="host-{{ host }}">{{ host }}</h2>
{% set items = r.for_host(host) %}
{% if not items %}
<p class="muted">{{ r.empty or "Nothing to report." }}</p>
{% else %}
<table>
  <tr><th>what</th><th>verdict</th><th>note</th><th>detail</th></tr>
  {% for i in items %}
  <tr><td>{% if i.group %}<span class="muted">{{ i.group }}:</span> {% endif %}{{ i.name }}</td>
      <td class="{{ i.verdict }}">{{ i.verdict }}</td><td>{{ i.note }}</td>
      <td>{% if i.diff %}<span class="muted">the diff below{% if i.detail %}, its commands under it{% endif %}</span>
      {%- else %}{% for line in i.detail[:8] %}<code>{{ line }}</code><br>{% endfor %}{% endif %}</td></tr>
  {% endfor %}
</table>
{% for i in items if i.diff %}
<p><strong>{{ i.name }}</strong></p>
<pre class="diff">{{ diff_lines(i.diff) }}</pre>
{% if i.detail %}
<details class="commands"><summary>{{ i.detail | length }} command{{ "s" if i.detail | length > 1 }}</summary>
<pre>{{ i.detail | join(newline) }}</pre>
</details>
{% endif %}
{% endfor %}
{% endif %}
{% endfor %}
</body>
</html>
"""
)


def diff_lines(diff: list[str]) -> Markup:
    """The lines of a diff, each in a span classed add, del, hunk or ctx, separated by one newline: the
    text of the `<pre>` is the diff itself (inline spans; no line ends with an empty one after it)."""
    return Markup("\n").join(Markup('<span class="{}">{}</span>').format(_line_class(line), line) for line in diff)


def _line_class(line: str) -> str:
    if line.startswith("+ "):
        return "add"
    if line.startswith("- "):
        return "del"
    if line.startswith("@@") or line.startswith("Will "):
        return "hunk"
    return "ctx"


def trend_labels(whens: list[str]) -> list[tuple[str, ...]]:
    """The chart's label lines under each bar: the day ("11-23"), and for a run with a time its time of day
    ("05:00"); runs of the same minute are told apart by a count ("05:00 #2"). A month ("2026-10") or any
    other text is shown as it is."""
    labels: list[tuple[str, ...]] = []
    seen: dict[str, int] = {}
    for when in whens:
        day, _, clock = when.partition(" ")
        if len(day) != 10 or day[4] != "-":  # not YYYY-MM-DD...: a month, or a free-form label
            labels.append((when,))
            continue
        clock = clock[:5]
        seen[when[:16]] = seen.get(when[:16], 0) + 1
        if seen[when[:16]] > 1:
            clock = f"{clock} #{seen[when[:16]]}"
        labels.append((day[5:], clock) if clock else (day[5:],))
    return labels


def _chart(trend: list[tuple[str, int]]) -> dict[str, object]:
    bar, gap, tallest, above = 34, 10, 120, 16  # `above`: room for the count over the tallest bar
    top = max([n for _, n in trend] + [1])
    labels = trend_labels([when for when, _ in trend])
    bars = []
    for k, ((when, n), label) in enumerate(zip(trend, labels, strict=True)):
        h = round(tallest * n / top) if n else 2
        y = above + tallest - h
        bars.append({"x": gap + k * (bar + gap), "y": y, "h": h, "n": n, "when": when, "label": label})
    return {"bar": bar, "height": above + tallest, "width": gap + len(trend) * (bar + gap), "bars": bars}


def render(report: Report) -> str:
    status_class = {"success": "ok", "passed": "ok", "clean": "ok", "drift": "warn"}.get(report.status, "bad")
    return TEMPLATE.render(
        r=report, status_class=status_class, chart=_chart(report.trend), diff_lines=diff_lines, newline="\n"
    )
