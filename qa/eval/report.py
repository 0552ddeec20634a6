"""`qa eval compare A B --html FILE`: the comparison as one self-contained HTML page with charts.

matplotlib is optional (the `eval` extra); without it the command says how to install it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from ..errors import QAError
from .runs import RunDir
from .scoring import LABELS

_STYLE = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border-bottom:1px solid #ddd;padding:4px 10px;
text-align:right}td:first-child,th:first-child{text-align:left}.up{color:#16803c}.down{color:#b42318}
.small{color:#666;font-size:13px}"""


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def charts(result: dict) -> list[str]:
    """Base64 PNGs: A and B side by side per metric, and B - A with its 95% interval."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise QAError("The HTML report needs matplotlib: pip install 'qa[eval]' (or pip install matplotlib).")
    rates = [
        d
        for d in result["deltas"]
        if not d["metric"].endswith("tokens") and not d["timing"] and d["metric"] != "summary_words"
    ]
    if not rates:
        return []
    names = [LABELS.get(d["metric"], d["metric"]) for d in rates]
    y = range(len(rates))
    out = []
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rates) + 1))
    ax.barh([i + 0.2 for i in y], [d["a"] for d in rates], height=0.4, label=f"A  {result['a']}", color="#9aa5b1")
    ax.barh([i - 0.2 for i in y], [d["b"] for d in rates], height=0.4, label=f"B  {result['b']}", color="#2f6fb0")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Metrics over {result['items']} shared items")
    out.append(_png(fig))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rates) + 1))
    deltas = [d["delta"] for d in rates]
    errors = [[d["delta"] - d["low"] for d in rates], [d["high"] - d["delta"] for d in rates]]
    colours = ["#16803c" if d["low"] > 0 else "#b42318" if d["high"] < 0 else "#9aa5b1" for d in rates]
    ax.barh(list(y), deltas, xerr=errors, color=colours, capsize=3)
    ax.axvline(0, color="#222", linewidth=0.8)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_title("B − A with paired bootstrap 95% intervals")
    out.append(_png(fig))
    plt.close(fig)
    return out


def write_html(result: dict, a: RunDir, b: RunDir, path: Path) -> None:
    esc = html.escape
    rows = []
    for d in result["deltas"]:
        cls = "" if d["timing"] or d["low"] <= 0 <= d["high"] else ("up" if d["delta"] > 0 else "down")
        rows.append(
            f"<tr><td>{esc(LABELS.get(d['metric'], d['metric']))}</td>"
            f"<td>{d['a']:.3f}</td><td>{d['b']:.3f}</td><td class='{cls}'>{d['delta']:+.3f}</td>"
            f"<td>{d['low']:+.3f} – {d['high']:+.3f}</td><td>{d['n']}</td></tr>"
        )
    flips = "".join(
        f"<tr><td>{esc(f['id'])}</td><td>{esc(f['metric'])}</td><td>{f['a']:g} → {f['b']:g}</td>"
        f"<td>{esc(f['question'])}</td><td>{esc(str(f['answer_a']))}</td>"
        f"<td>{esc(str(f['answer_b']))}</td></tr>"
        for f in result["flips"]
    )
    changed = "".join(
        f"<li><b>{esc(k)}</b>: {esc(str(v[0]))} → {esc(str(v[1]))}</li>" for k, v in result["settings_changed"].items()
    )
    images = "".join(f"<p><img alt='chart' src='data:image/png;base64,{png}'></p>" for png in charts(result))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>qa eval compare</title>
<style>{_STYLE}</style></head><body>
<h1>qa eval compare</h1>
<p>A: <code>{esc(str(a.path))}</code><br>B: <code>{esc(str(b.path))}</code><br>{result["items"]} shared items.</p>
{images}
<h2>Metrics</h2><table><tr><th>metric</th><th>A</th><th>B</th><th>B − A</th><th>95% interval</th><th>n</th></tr>
{"".join(rows)}</table>
<h2>Settings that differ</h2><ul>{changed or "<li>none</li>"}</ul>
<h2>Items that flipped</h2><table><tr><th>id</th><th>metric</th><th>A → B</th><th>question</th><th>answer A</th>
<th>answer B</th></tr>{flips}</table>
<p class="small">Intervals: paired percentile bootstrap over the shared items (1,000 resamples, seeded).</p>
</body></html>"""
    path.write_text(page, encoding="utf-8")
