"""Model quality for analysts: diagnostics, fit over time, residuals, held-out error, intervals, carry-over."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as w

from mmmlib.views import diagnostics_table
from mmmlib.widgets.charts import adstock_weights, fit_over_time, interval_bars, residuals, roas_distributions
from mmmlib.widgets.source import load_or_message
from mmmlib.widgets.style import health_badge, run_title


def _table(summary: dict[str, Any]) -> w.HTML:
    table = diagnostics_table(summary)
    rows = "".join(
        f"<tr><td style='padding:2px 12px 2px 0'>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in table["value"].items()
    )
    return w.HTML(f"<table class='mmm-diagnostics'>{rows}</table>")


def quality_view(run: Path | None) -> w.Widget:
    summary, problem = load_or_message(run)
    if summary is None:
        return problem
    parts: list[w.Widget] = [
        run_title("Model quality", summary),
        health_badge(summary),
        w.HTML("<h3>Diagnostics</h3>"),
        _table(summary),
        fit_over_time(summary),
        residuals(summary),
        w.HBox(
            [
                interval_bars(summary, "roas", "ROAS posterior (mean, 94% HDI)"),
                interval_bars(summary, "contribution", "Contribution posterior (mean, 94% HDI)", ".3s"),
            ],
            layout=w.Layout(width="100%"),
        ),
    ]
    draws = roas_draws(run, summary)
    if draws:
        parts += [
            w.HTML("<h3>Posterior distributions of ROAS</h3><div style='color:#666'>dashed: break-even</div>"),
            roas_distributions(summary, draws),
        ]
    carry = adstock_weights(summary)
    if carry is not None:
        parts.append(carry)
    return w.VBox(parts, layout=w.Layout(gap="10px", padding="8px"))


def roas_draws(run: Path | None, summary: dict[str, Any]) -> dict[str, Any] | None:
    """Per-channel ROAS draws from the posterior (read lazily: only this view needs them)."""
    if run is None or not (Path(run) / "posterior.nc").is_file():
        return None
    import xarray as xr

    from mmmlib.analysis import Posterior

    tree = xr.open_datatree(Path(run) / "posterior.nc")
    try:
        post = Posterior.from_idata(tree)
        value = summary.get("revenue_per_kpi") if summary.get("kpi_type") == "count" else None
        contrib = post.contributions().sum(axis=1) * (value or 1.0)
        spend = post.spend.sum(axis=0)
        return {ch: contrib[:, j] / spend[j] for j, ch in enumerate(post.channels) if spend[j] > 0}
    finally:
        tree.close()
