"""The session timeline: one self-contained HTML file with a chart per measure.

Hand-written SVG rather than a plotting library: a library either ships a
large JavaScript bundle (the file must stay a few hundred KiB for 1,000 tests
and fetch nothing) or renders static images without per-test hover. The
charts are plain SVG polylines, readable without JavaScript; a few lines of
script add the hover that names each test.
"""

from __future__ import annotations

import datetime
import html
import json
from pathlib import Path

from pytest_goleak.judge.measures import CHARTED, Measure
from pytest_goleak.report.session import Point, SessionRecorder

WIDTH, HEIGHT, PAD, LEFT = 960, 180, 48, 84
COLORS = ("#2f6fdf", "#1b9e77", "#7570b3", "#d95f02", "#66a61e", "#e7298a")


def drift_start(values: list[int], measure: Measure) -> int | None:
    """The first reading of the climb a series ended on, if it climbed enough to call it drift.

    That is the reading right after the last one still at the series' low
    (within the measure's tolerance).
    """
    if len(values) < 3:
        return None
    low = min(values)
    if values[-1] - low < measure.drift:
        return None
    last_low = max(i for i, v in enumerate(values) if v <= low + measure.tolerance)
    return last_low + 1 if last_low < len(values) - 1 else None


def _charted(measure: Measure, points: list[Point], series: dict[str, list[int]]) -> list[int | None]:
    """The measure's value after each test as its chart shows it, each service's series on its own."""
    values: list[int | None] = [None] * len(points)
    for indices in series.values():
        shown = measure.chart_values([points[i].after.get(measure.name) for i in indices])
        for index, value in zip(indices, shown, strict=True):
            values[index] = value
    return values


def _chart(measure: Measure, points: list[Point], series: dict[str, list[int]], values: list[int | None]) -> str:
    """The measure's chart: ``values`` (from :func:`_charted`) after each test, a line per service."""
    x_step = (WIDTH - LEFT - PAD) / max(len(points) - 1, 1)
    title = measure.title + (", since the first test" if measure.from_first else "")
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1

    def y(value: float) -> float:
        return HEIGHT - PAD / 2 - (value - low) / span * (HEIGHT - PAD)

    parts = [
        f'<section><h2>{html.escape(title)}</h2><svg class="chart" data-measure="{measure.name}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)} after each test">',
        f'<line class="axis" x1="{LEFT}" y1="{y(low):.1f}" x2="{WIDTH - PAD}" y2="{y(low):.1f}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{y(high) + 4:.1f}">{measure.shown_in_chart(high)}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{y(low) + 4:.1f}">{measure.shown_in_chart(low)}</text>',
    ]
    for color, (service, indices) in zip(COLORS * 10, series.items(), strict=False):
        coords = [(LEFT + i * x_step, y(values[i] or 0)) for i in indices if values[i] is not None]
        line = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in coords)
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{line}">'
            f"<title>{html.escape(service)}</title></polyline>"
        )
        series_values = [values[i] or 0 for i in indices if values[i] is not None]
        start = drift_start(series_values, measure)
        if start is not None:
            index = [i for i in indices if values[i] is not None][start]
            x = LEFT + index * x_step
            parts.append(f'<line class="drift" x1="{x:.1f}" y1="{PAD / 2}" x2="{x:.1f}" y2="{HEIGHT - PAD / 2}"/>')
            parts.append(
                f'<text class="drift-label" x="{x + 4:.1f}" y="{PAD / 2 + 10}">drift from '
                f"{html.escape(points[index].nodeid)}</text>"
            )
    for index, point in enumerate(points):
        if point.failure and values[index] is not None:
            parts.append(
                f'<circle class="leak" cx="{LEFT + index * x_step:.1f}" cy="{y(values[index] or 0):.1f}" r="4">'
                f"<title>{html.escape(point.nodeid)}: {html.escape(point.failure)}</title></circle>"
            )
    parts.append("</svg></section>")
    return "\n".join(parts)


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 15px; margin: 18px 0 4px; }
.chart { width: 100%; max-width: 960px; background: #fafafa; border: 1px solid #ddd; }
.axis { stroke: #bbb; } .tick { font-size: 11px; fill: #666; text-anchor: end; }
.leak { fill: #d62728; } .drift { stroke: #d62728; stroke-dasharray: 4 3; }
.drift-label { font-size: 11px; fill: #d62728; }
.cursor { stroke: #999; }
#tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 4px 8px;
       border-radius: 4px; font-size: 12px; display: none; white-space: pre; }
.legend span { margin-right: 16px; }
"""

SCRIPT = """
(function () {
  var data = JSON.parse(document.getElementById("goleak-data").textContent);
  var tip = document.getElementById("tip");
  var W = %(width)d, PAD = %(pad)d, LEFT = %(left)d;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var measure = svg.getAttribute("data-measure");
    svg.addEventListener("mousemove", function (event) {
      var box = svg.getBoundingClientRect();
      var x = (event.clientX - box.left) / box.width * W;
      var step = (W - LEFT - PAD) / Math.max(data.length - 1, 1);
      var i = Math.max(0, Math.min(data.length - 1, Math.round((x - LEFT) / step)));
      var p = data[i];
      var text = "#" + (i + 1) + " " + p.test + "\\n" + measure + ": " + p[measure];
      tip.textContent = p.failure ? text + "\\n" + p.failure : text;
      tip.style.left = (event.clientX + 12) + "px";
      tip.style.top = (event.clientY + 12) + "px";
      tip.style.display = "block";
    });
    svg.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
})();
"""


def render_timeline(recorder: SessionRecorder) -> str:
    points = recorder.points
    series: dict[str, list[int]] = {}
    for index, point in enumerate(points):
        series.setdefault(point.service, []).append(index)
    charted = {m.name: _charted(m, points, series) for m in CHARTED}
    data = [
        {
            "test": p.nodeid,
            "failure": p.failure,
            **{m.name: "-" if (value := charted[m.name][index]) is None else m.shown_in_chart(value) for m in CHARTED},
        }
        for index, p in enumerate(points)
    ]
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    legend = " ".join(
        f'<span style="color:{color}">&#9632; {html.escape(service)}</span>'
        for color, service in zip(COLORS * 10, series, strict=False)
    )
    charts = "\n".join(_chart(measure, points, series, charted[measure.name]) for measure in CHARTED)
    drift = "".join(f"<li>{html.escape(problem)}</li>" for problem in recorder.drift())
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pytest-goleak timeline</title>
<style>{STYLE}</style></head>
<body>
<h1>pytest-goleak: the service after each test</h1>
<p>{len(points)} tests checked, {len(recorder.failures)} leaked (red dots); {stamp}. Hover a chart for the test.</p>
<p class="legend">{legend}</p>
{f"<ul class='drift-problems'>{drift}</ul>" if drift else ""}
{charts}
<div id="tip"></div>
<script type="application/json" id="goleak-data">{payload}</script>
<script>{SCRIPT % {"width": WIDTH, "pad": PAD, "left": LEFT}}</script>
</body></html>
"""


def write_timeline(path: Path, recorder: SessionRecorder) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_timeline(recorder), encoding="utf-8")
