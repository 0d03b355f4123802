"""The report to look at: one self-contained HTML file (``optconf check --html``, the plugin's ``--optconf-html``).

A heat map of the worst ratio by algorithm × check × dtype (a table whose cells are coloured by
``log10(|candidate − exact| / budget)``: green within budget, red beyond, amber a known upstream bug), then, for
every failing check and the worst passing ones, a plot (matplotlib, inlined as PNG) of each quantity's ratio over
the steps of its worst case and of the worst element's candidate and exact values, beside the failure's text and
its diagnosis.  Everything is in the file: no network, no other file.

Imports: the data model and the text report.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable
from pathlib import Path

from optimizer_conformance.conformance import files
from optimizer_conformance.conformance.model import Outcome
from optimizer_conformance.conformance.report import failures_text, ratio_text, summary_line

FAIL, PASS, UPSTREAM, NOT_APPLICABLE = "#d62728", "#2ca02c", "#ff9f1c", "#c7c7c7"
WORST_PASSING = 3  # the passing checks drawn besides the failures: the closest to their budget

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table.heat { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
table.heat th, table.heat td { border: 1px solid #fff; padding: 3px 8px; text-align: right; }
table.heat th { background: #f3f3f3; text-align: left; }
td.fail { color: #fff; font-weight: bold; }
section.case { border-top: 1px solid #ddd; padding-top: 1em; margin-top: 1.5em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 12px; }
img { max-width: 100%; }
"""

# Every image must have loaded: the page says so on its body (read by the browser test).
SCRIPT = """
window.addEventListener("load", () => {
  const images = [...document.images];
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.images = `${loaded}/${images.length}`;
});
"""


def _colour(o: Outcome) -> str:
    """Green lightening towards the budget, red beyond it, amber for a known upstream bug, grey when n/a."""
    if o.not_applicable is not None:
        return NOT_APPLICABLE
    if o.known_upstream_bug:
        return UPSTREAM
    if o.failed:
        return FAIL
    ratio = o.worst.ratio if o.worst is not None else 0.0
    closeness = min(1.0, max(0.0, (math.log10(ratio) + 6) / 6)) if ratio > 0 else 0.0  # 1e-6 .. 1
    green = (44, 160, 44)
    r, g, b = (int(c + (255 - c) * (1 - closeness) * 0.8) for c in green)
    return f"#{r:02x}{g:02x}{b:02x}"


def _cell_text(o: Outcome) -> str:
    if o.error:
        return "ERROR"
    if o.not_applicable is not None:
        return "n/a"
    ratio = "" if o.worst is None else ratio_text(o.worst.ratio)
    if o.known_upstream_bug:
        return f"UPSTREAM {ratio}".strip()
    return ratio or ("ok" if o.passed else "FAIL")


def heat_map(outcomes: list[Outcome]) -> str:
    """One table per algorithm: a row per check, a column per dtype (the API checks in one column)."""
    parts = []
    for algorithm in dict.fromkeys(o.algorithm for o in outcomes):
        rows = [o for o in outcomes if o.algorithm == algorithm]
        dtypes = list(dict.fromkeys(o.dtype or "api" for o in rows))
        cell = {(o.check, o.dtype or "api"): o for o in rows}
        head = "".join(f"<th>{html.escape(d)}</th>" for d in dtypes)
        body = []
        for check in dict.fromkeys(o.check for o in rows):
            cells = []
            for dtype in dtypes:
                o = cell.get((check, dtype))
                if o is None:
                    cells.append("<td></td>")
                    continue
                verdict = "fail" if o.failed else "upstream" if o.known_upstream_bug else (
                    "na" if o.not_applicable is not None else "pass")
                cells.append(f'<td class="{verdict}" data-check="{html.escape(check)}" data-dtype="{dtype}" '
                             f'style="background:{_colour(o)}" title="{html.escape(o.verdict)}">'
                             f"{html.escape(_cell_text(o))}</td>")
            body.append(f"<tr><th>{html.escape(check)}</th>{''.join(cells)}</tr>")
        parts.append(f'<h3>{html.escape(algorithm)}</h3><table class="heat" data-algorithm="{html.escape(algorithm)}">'
                     f"<tr><th>check</th>{head}</tr>{''.join(body)}</table>")
    return "".join(parts)


def plot(o: Outcome) -> str:
    """The worst case of ``o`` as an inlined PNG: each quantity's ratio over the steps, and the worst element."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    trace = o.trace or {}
    figure, (ratios, element) = plt.subplots(1, 2, figsize=(11, 3.6))
    for quantity, values in sorted(trace.get("ratios", {}).items()):
        steps = range(1, len(values) + 1)
        # Numbers as the JSON carries them: "inf", "-inf" and "nan" are strings, which float() reads.
        ys = [max(float(v), 1e-12) if math.isfinite(float(v)) else 1e12 for v in values]
        ratios.plot(steps, ys, marker=".", linewidth=1, label=quantity)
    ratios.axhline(1.0, color=FAIL, linestyle="--", linewidth=1, label="budget")
    ratios.set_yscale("log")
    for axis in (ratios, element):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    ratios.set(xlabel="step", ylabel="|candidate − exact| / budget", title=f"{trace.get('case', o.worst_case)}")
    if len(trace.get("ratios", {})) <= 12:
        ratios.legend(fontsize=7, loc="best")
    worst = trace.get("element", {})
    candidate = [float(v) for v in worst.get("candidate", [])]
    exact = [float(v) for v in worst.get("exact", [])]
    element.plot(range(1, len(exact) + 1), exact, color="#1f77b4", marker="o", label="exact")
    element.plot(range(1, len(candidate) + 1), candidate, color=FAIL if o.failed else "#555", marker="x",
                 linestyle="--", label="candidate")
    element.set(xlabel="step", title=f"{worst.get('quantity', '')}[{worst.get('element', '')}]")
    element.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(o.check)}" src="data:image/png;base64,{encoded}">'


def drawn(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """What the report draws: every failure, every known upstream bug, and the worst passing checks."""
    outcomes = [o for o in outcomes if o.trace]
    bad = [o for o in outcomes if o.failed or o.known_upstream_bug]
    passing = sorted((o for o in outcomes if o.passed and o.worst is not None), key=lambda o: -o.worst.ratio)
    return bad + passing[:WORST_PASSING]


def _settings_text(settings: dict) -> str:
    def text(value) -> str:
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    return "; ".join(f"{key} {text(value)}" for key, value in settings.items() if value not in (None, [], ""))


def render(outcomes: list[Outcome], candidate: dict, settings: dict) -> str:
    """The whole page."""
    title = f"optconf check {candidate.get('name', '')}"
    versions = ", ".join(f"{k} {v}" for k, v in (candidate.get("versions") or {}).items())
    sections = []
    for o in drawn(outcomes):
        where = o.algorithm if o.dtype is None else f"{o.algorithm} [{o.dtype}]"
        text = failures_text([o]) if not o.passed else \
            f"pass: worst ratio {ratio_text(o.worst.ratio)} on {o.worst_case}"
        sections.append(f'<section class="case" data-verdict="{html.escape(o.verdict)}"><h3>{html.escape(o.verdict)}: '
                        f"{html.escape(o.check)} {html.escape(where)}</h3>{plot(o)}<pre>{html.escape(text)}</pre>"
                        "</section>")
    failures = [o for o in outcomes if o.failed and not o.trace]
    untraced = f"<h2>Failures without a trajectory</h2><pre>{html.escape(failures_text(failures))}</pre>" \
        if failures else ""
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(summary_line(outcomes))}</p>"
            f"<p>{html.escape(versions)}</p><p>settings: {html.escape(_settings_text(settings))}</p>"
            f"<h2>Worst |candidate − exact| / budget</h2>{heat_map(outcomes)}"
            f"<h2>Failing checks and the closest passing ones</h2>{''.join(sections) or '<p>nothing to draw</p>'}"
            f"{untraced}</body></html>")


def write(path: str | Path, outcomes: list[Outcome], candidate: dict, settings: dict) -> None:
    files.write_atomically(Path(path), render(outcomes, candidate, settings), encoding="utf-8")
