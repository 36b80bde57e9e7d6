"""HTML rendering of a report: one self-contained file (inline CSS and SVG, no script, no external URL)
opening with a banner in its verdict's colour, the summary, notes, a chart of drift findings (or a DR test's
failed checks) over the last runs, a DR test's RTO and RPO per tier month by month, the quiet hosts on one
line, then a table per host that has something to say, each file change shown as a diff with the
operation's commands folded under it (`<details>`, no script). Banner, badges and bars take their colour
from the verdict (reports.verdicts). Every summary number carries `data-key`, so a test can read it back
from the rendered page.
"""

from __future__ import annotations

from jinja2 import Environment
from markupsafe import Markup

from opsrun.reports.charts import TierTrend, count_chart, tier_chart, trend_labels
from opsrun.reports.model import Report
from opsrun.reports.verdicts import COLOURS, css, is_verdict, verdict_of

__all__ = ["badge", "diff_lines", "render", "trend_labels"]

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
  {{ verdict_css }}
  .status { display: inline-block; padding: .15em .6em; border-radius: .3em; font-weight: 600; color: #fff;
            background: var(--v); }
  table { border-collapse: collapse; width: 100%; margin: .6em 0; }
  th, td { border: 1px solid #d6dae3; padding: .35em .6em; text-align: left; vertical-align: top; }
  th { background: #f1f3f7; }
  table.summary td { font-size: 1.3em; font-weight: 600; }
  td.verdict { color: var(--v); font-weight: 600; }
  pre.diff { background: #f7f8fa; border: 1px solid #d6dae3; padding: .6em; overflow-x: auto; }
  /* inline on purpose: the newline after each line ends it; a block here added an empty line after each */
  pre.diff .add { color: #116329; background: #dafbe1; }
  pre.diff .del { color: #82071e; background: #ffebe9; }
  pre.diff .hunk { color: #6639ba; }
  details.commands { margin: -.3em 0 1em; } details.commands summary { cursor: pointer; color: #5b6475; }
  p.quiet-hosts { color: #2f7d32; }
  .muted { color: #5b6475; } ul.notes li { margin: .2em 0; }
  .first-line { background: var(--v); color: #fff; padding: .5em .8em; font-weight: 700; border-radius: .3em; }
  .tier { display: inline-block; vertical-align: top; margin: 0 2em 1em 0; } .tier h3 { font-size: 1em; }
</style>
</head>
<body>
<p class="first-line v-{{ verdict }}" data-key="first_line">{{ r.first_line or r.title + ": " + r.status.upper() }}</p>
<h1>{{ r.title }}</h1>
<p><span class="status v-{{ verdict }}" data-key="status">{{ r.status }}</span>
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
  {% for row in rows %}<tr>{% for c in row %}<td{{ badge(c) }}>{{ c }}</td>{% endfor %}</tr>
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
        fill="{{ colours[bar.verdict] }}"><title>{{ bar.when }}: {{ bar.n }}</title></rect>
  <text x="{{ bar.x + chart.bar / 2 }}" y="{{ bar.y - 4 }}" font-size="11" text-anchor="middle">{{ bar.n }}</text>
  {% for line in bar.label %}
  <text x="{{ bar.x + chart.bar / 2 }}" y="{{ chart.height + 14 + 11 * loop.index0 }}" font-size="9"
        text-anchor="middle" fill="#5b6475" class="label">{{ line }}</text>
  {% endfor %}
  {% endfor %}
</svg>
{% endif %}

{% if r.tiers %}
<h2>RTO and RPO per tier, month by month</h2>
{% for tier in r.tiers %}
<div class="tier" data-key="tier-{{ tier.system }}"><h3>{{ tier.system }}</h3>
{% for c in tier_charts(tier) %}
<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{{ tier.system }} {{ c.what }} per month"
     data-key="{{ c.what | lower }}-{{ tier.system }}" width="{{ c.width + 20 }}" height="{{ c.height + 44 }}">
  <text x="0" y="11" font-size="11" fill="#5b6475">{{ c.what }} (target {{ c.target }})</text>
  <g transform="translate(0, 14)">
  <line x1="0" y1="{{ c.height }}" x2="{{ c.width }}" y2="{{ c.height }}" stroke="#5b6475"/>
  {% for bar in c.bars %}
  <rect x="{{ bar.x }}" y="{{ bar.y }}" width="{{ c.bar }}" height="{{ bar.h }}" class="bar-{{ bar.verdict }}"
        fill="{{ colours[bar.verdict] }}"><title>{{ bar.title }}</title></rect>
  <text x="{{ bar.x + c.bar / 2 }}" y="{{ bar.y - 4 }}" font-size="10" text-anchor="middle">{{ bar.text }}</text>
  {% if bar.target_y is not none %}<line x1="{{ bar.x - c.gap / 2 }}" x2="{{ bar.x + c.bar + c.gap / 2 }}"
        y1="{{ bar.target_y }}" y2="{{ bar.target_y }}" stroke="#1d2330" stroke-dasharray="4 3"/>{% endif %}
  <text x="{{ bar.x + c.bar / 2 }}" y="{{ c.height + 14 }}" font-size="9" text-anchor="middle" fill="#5b6475"
        class="label">{{ bar.month }}</text>
  {% endfor %}
  </g>
</svg>
{% endfor %}
</div>
{% endfor %}
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
      <td{{ badge(i.verdict) }}>{{ i.verdict }}</td><td>{{ i.note }}</td>
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


def badge(word: str) -> Markup:
    """The class attribute of a table cell holding a verdict (its colour), or nothing for any other cell."""
    if not is_verdict(word):
        return Markup("")
    return Markup(' class="verdict v-{}"').format(verdict_of(word))


def tier_charts(tier: TierTrend) -> list[dict[str, object]]:
    """A tier's two charts: RTO, then RPO, per month."""
    return [
        tier_chart("RTO", tier.months, tier.rto, tier.rto_target),
        tier_chart("RPO", tier.months, tier.rpo, tier.rpo_target),
    ]


def render(report: Report) -> str:
    return TEMPLATE.render(
        r=report,
        verdict=verdict_of(report.status),
        verdict_css=css(),  # our own constants: no character autoescape would change
        colours=COLOURS,
        badge=badge,
        chart=count_chart(report.trend, report.trend_verdicts),
        tier_charts=tier_charts,
        diff_lines=diff_lines,
        newline="\n",
    )
