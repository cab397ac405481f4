"""Model quality for analysts: diagnostics, fit over time, residuals, held-out error, intervals, carry-over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w

from mmmlib import roas_priors, seasonality
from mmmlib.errors import MMMError
from mmmlib.identification import is_identified
from mmmlib.markup import text as esc
from mmmlib.refresh import geo_structure_sentence
from mmmlib.runs import RunDir
from mmmlib.summary import GEO_SELECTION
from mmmlib.tables import diagnostics_table
from mmmlib.widgets.charts import (
    adstock_weights,
    fit_over_time,
    interval_bars,
    residuals,
    roas_distributions,
    unidentified_legend,
)
from mmmlib.widgets.source import load_or_message
from mmmlib.widgets.style import health_badge, message, run_title
from mmmlib.wording import interval_label

MEDIA = ("adstock_", "saturation_")  # the parameters whose priors the view sets against their posteriors


def _table(summary: dict[str, Any]) -> w.HTML:
    table = diagnostics_table(summary)
    rows = "".join(
        f"<tr><td style='padding:2px 12px 2px 0'>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in table["value"].items()
    )
    return w.HTML(f"<table class='mmm-diagnostics'>{rows}</table>")


CELL = "style='padding:2px 12px 2px 0;text-align:left'"


def _html_table(css: str, header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th {CELL}>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {CELL}>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table class='{css}'><tr>{head}</tr>{body}</table>"


def _number(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def sampling_note(candidate: dict[str, Any]) -> str:
    """What happened to a candidate beyond its scores: refitted after divergences, left out of the combination."""
    parts = []
    if candidate.get("retried"):
        first = candidate["retried"]
        parts.append(
            f"refitted with smaller steps after {first['divergences']} divergences at target_accept "
            f"{first['target_accept']}"
        )
    if candidate.get("excluded"):
        parts.append(f"left out of the combination: {candidate['excluded']}")
    return "; ".join(parts) or "—"


def structures_table(summary: dict[str, Any]) -> w.HTML:
    """The candidate model structures the fit compared, their out-of-sample score and weight (``summary["model"]``)."""
    model = summary.get("model")
    if not model or not model.get("candidates"):
        return w.HTML(
            "<h3>Model structures</h3><div class='mmm-structures'>This run records no comparison of model structures "
            "(it was fitted with one fixed structure, before candidates were compared).</div>"
        )
    cv = any("elpd_cv" in c for c in model["candidates"])
    how = {
        "weighted": "the candidates' posterior draws are combined by these weights (pseudo-BMA+ on "
        + (
            "time-slice cross-validation: each candidate refitted up to three cuts and scored on the quarter after "
            "each; candidates that forecast equally well share the draws)"
            if cv
            else "PSIS-LOO: candidates that predict held-out weeks equally well share the draws)"
        ),
        GEO_SELECTION: "on the national sum of the geos; "
        + (
            "two structures were then fitted over every geo (below; the diagnostics above are their mixture's)"
            if model.get("geo_candidates")
            else "one structure was then fitted over every geo (the diagnostics above are that geo fit's)"
        ),
    }.get(model.get("selection"), "one structure was fitted")
    fitted = geo_structure_sentence(model)
    if fitted:
        how = f"{how}. {fitted[:-1]}"
    for said in (seasonality.sentence(model), roas_priors.sentence(model)):
        if said:
            how = f"{how}. {said[:-1]}"
    html = (
        f"<h3>Model structures</h3><div style='color:#666'>Compared out of sample; {esc(how)}. Higher elpd predicts "
        f"unseen weeks better.</div>{_structure_rows_table('mmm-structures', model['candidates'], cv)}"
    )
    if model.get("geo_candidates"):
        html += (
            "<h4>Fitted over the geos</h4><div style='color:#666'>The run's posterior mixes these two geo fits by "
            "their weights (PSIS-LOO on every geo's weeks); the diagnostics are each geo fit's own.</div>"
            + _structure_rows_table("mmm-geo-structures", model["geo_candidates"], False)
        )
    return w.HTML(html)


def _structure_rows_table(css: str, candidates: list[dict[str, Any]], cv: bool) -> str:
    """One row per candidate structure: what it is, its scores, weight and sampling diagnostics."""
    rows = []  # a candidate with a seasonality order of its own (mmmlib.seasonality) says so beside its baseline
    for c in candidates:
        elpd = "—" if c.get("elpd_loo") is None else f"{c['elpd_loo']:,.1f} ± {_number(c.get('elpd_se'), ',.1f')}"
        cv_elpd = f"{c['elpd_cv']:,.1f} ± {_number(c.get('elpd_cv_se'), ',.1f')}" if "elpd_cv" in c else "—"
        rows.append(
            [
                c.get("adstock", "—"),
                c.get("saturation", "—"),
                c.get("baseline", "—") + (f", {order} harmonics" if (order := c.get("yearly_seasonality")) else ""),
                elpd,
                *([cv_elpd] if cv else []),
                _number(c.get("weight"), ".2f"),
                _number(c.get("r_hat_max"), ".3f"),
                _number(c.get("divergences"), "d"),
                sampling_note(c),
            ]
        )
    header = [
        "carry-over",
        "returns",
        "baseline",
        "out-of-sample elpd (PSIS-LOO) ± se",
        *(["elpd of the quarters ahead (time-slice CV) ± se"] if cv else []),
        "weight",
        "max R-hat",
        "divergences",
        "note",
    ]
    return _html_table(css, header, rows)


def structure_roas_table(summary: dict[str, Any]) -> w.HTML | None:
    """Each channel's ROAS under each candidate structure alone, beside the combined one: where the structures
    disagree, the combined interval is wide because of it (None when the run records no per-candidate ROAS)."""
    model = summary.get("model") or {}
    on_geos = bool(model.get("geo_candidates"))  # the run's posterior mixes the geo fits, not the sum's candidates
    candidates = [c for c in model.get("geo_candidates" if on_geos else "candidates") or [] if c.get("roas")]
    if len(candidates) < 2:
        return None

    def shown(r: dict[str, float] | None) -> str:
        return "—" if not r else f"{r['mean']:.2f} [{r['hdi_low']:.2f}, {r['hdi_high']:.2f}]"

    header = [
        "channel",
        *(f"{seasonality.label(c)} (weight {_number(c.get('weight'), '.2f')})" for c in candidates),
    ]
    header.append(f"combined ({interval_label(summary)})")
    rows = [
        [ch["label"], *(shown(c["roas"].get(ch["name"])) for c in candidates), shown(ch["roas"])]
        for ch in summary["channels"]
    ]
    prob = candidates[0].get("roas_hdi_prob")
    note = (
        f"ROAS (mean, {interval_label(prob)}) each candidate structure gives on its own; the combined posterior "
        "mixes them by weight, so where they disagree its interval spans them."
    )
    if on_geos:
        note += " Both structures fitted over every geo; national ROAS summed over the geos."
    elif model.get("selection") == GEO_SELECTION:
        note += " Candidates fitted to the national sum of the geos."
    return w.HTML(
        f"<h3>ROAS under each structure</h3><div style='color:#666'>{esc(note)}</div>"
        f"{_html_table('mmm-structure-roas', header, rows)}"
    )


def identification_table(summary: dict[str, Any]) -> w.HTML:
    """Which channels this data does not identify, and why: ROAS posterior sd against its prior sd, and the HDI."""
    breakeven = summary.get("breakeven_roas") or 1.0
    rows = []
    for ch in summary["channels"]:
        if is_identified(ch, breakeven):
            continue
        info = ch.get("identification") or {}
        r = ch["roas"]
        why = "; ".join(info.get("reasons") or []) or "its ROAS interval holds both half and twice break-even"
        rows.append(
            [
                ch["label"],
                f"{r['mean']:.2f} [{r['hdi_low']:.2f}, {r['hdi_high']:.2f}]",
                _number(info.get("roas_sd"), ".2f"),
                _number(info.get("prior_sd"), ".2f"),
                why,
            ]
        )
    title = "<h3>Channels this data does not identify</h3>"
    if not rows:
        return w.HTML(f"{title}<div class='mmm-identification'>Every channel is identified by this data.</div>")
    held = "Their budgets are held and a lift test is the way to learn their return."
    if not roas_priors.priced(summary):  # no break-even in these units
        rule = f"Not identified: ROAS posterior sd above half its prior sd (the data barely moved the prior). {held}"
    else:
        rule = (
            "Not identified: ROAS posterior sd above half its prior sd (the data barely moved the prior), or a "
            f"{interval_label(summary)} holding both {0.5 * breakeven:.2f} and {2 * breakeven:.2f} (half and twice "
            f"break-even). {held}"
        )
    header = ["channel", f"ROAS ({interval_label(summary)})", "posterior sd", "prior sd", "why"]
    return w.HTML(f"{title}<div style='color:#666'>{esc(rule)}</div>{_html_table('mmm-identification', header, rows)}")


def quality_view(run: Path | None) -> w.Widget:
    summary, problem = load_or_message(run)
    if summary is None:
        return problem
    parts: list[w.Widget] = [
        run_title(summary),
        health_badge(summary),
        w.HTML("<h3>Diagnostics</h3>"),
        _table(summary),
        structures_table(summary),
        *([by_structure] if (by_structure := structure_roas_table(summary)) is not None else []),
        identification_table(summary),
        fit_over_time(summary),
        residuals(summary),
        w.HBox(
            [
                interval_bars(
                    summary, "roas", f"ROAS posterior (mean, {interval_label(summary)})", mark_unidentified=True
                ),
                interval_bars(
                    summary, "contribution", f"Contribution posterior (mean, {interval_label(summary)})", ".3s"
                ),
            ],
            layout=w.Layout(width="100%"),
        ),
        unidentified_legend(summary),
    ]
    parts += posterior_panels(run, summary)
    carry = adstock_weights(summary)
    if carry is not None:
        parts.append(carry)
    return w.VBox(parts, layout=w.Layout(gap="10px", padding="8px"))


def posterior_panels(run: Path | None, summary: dict[str, Any]) -> list[w.Widget]:
    """The panels drawn from the posterior's draws (ROAS distributions, priors against posteriors).

    ``posterior.nc`` is read once, here, and only by this view: the contributions and the media parameters.
    """
    if run is None or not RunDir(run).posterior_file.is_file():
        return []
    try:
        tree = RunDir(run).posterior(
            keep=lambda name: name in ("channel_contribution", "structure") or name.startswith(MEDIA),
            need=["channel_contribution"],
        )
        with RunDir(run).reading():
            draws = _roas_by_channel(tree, summary)
    except MMMError as exc:  # a damaged posterior: its sentence in place of these panels, the rest of the page stays
        return [message(str(exc), "error")]
    try:
        comparison = priors_against_posteriors(tree, summary)
    except Exception as exc:  # an optional panel never takes the page down
        comparison = w.HTML(f"<div class='mmm-msg'>Priors against posteriors are not available: {esc(exc)}</div>")
    parts: list[w.Widget] = []
    if draws:
        parts += [
            w.HTML("<h3>Posterior distributions of ROAS</h3><div style='color:#666'>dashed: break-even</div>"),
            roas_distributions(summary, draws),
        ]
    if comparison is not None:
        parts += [
            w.HTML(
                "<h3>Priors against posteriors</h3><div style='color:#666'>grey: prior; colour: posterior. "
                "A posterior that barely moved from its prior means the data said little about it.</div>"
            ),
            comparison,
        ]
    return parts


def _roas_by_channel(tree: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Per-channel ROAS draws (channels with spend), as the summary's intervals were computed."""
    from mmmlib.analysis import Posterior, kpi_value, roas_draws

    post = Posterior.from_idata(tree)
    roas = roas_draws(post, kpi_value(summary.get("kpi_type"), summary.get("revenue_per_kpi")))
    spend = post.spend.sum(axis=0)
    return {ch: roas[:, j] for j, ch in enumerate(post.channels) if spend[j] > 0}


def _best_structure_draws(tree: Any) -> Any:
    """The draws of the most weighted candidate structure, whose priors the posterior file's attributes hold.

    A combined posterior mixes structures whose parameters share names but not meanings (a geometric and a delayed
    carry-over both have ``alpha``): each prior is set against its own structure's draws only.
    """
    import json

    import numpy as np

    post = tree["posterior"]
    if "structure" not in post.data_vars:
        return slice(None)
    weights = [c.get("weight", 0) for c in json.loads(tree.attrs.get("candidates") or "[]")]
    best = int(np.argmax(weights)) if weights else 0
    return np.asarray(post["structure"].values).reshape(-1) == best


def priors_against_posteriors(tree: Any, summary: dict[str, Any]) -> w.Widget | None:
    """For a chosen media parameter, each channel's prior and posterior densities overlaid."""
    import bqplot as bq
    import numpy as np

    from mmmlib.priors import media_prior_draws
    from mmmlib.widgets.style import channel_colours

    channels = [str(c) for c in tree["constant_data"]["channel"].values]
    priors = media_prior_draws(dict(tree.attrs), channels)
    posts = {
        n: np.asarray(tree["posterior"][n].values).reshape(-1, len(channels))[_best_structure_draws(tree)]
        for n in priors
        if n in tree["posterior"].data_vars
    }
    if not posts:
        return None
    colours = channel_colours(summary)
    labels = {c["name"]: c["label"] for c in summary["channels"]}

    def grid(param: str) -> w.GridBox:
        figures = []
        for j, ch in enumerate(channels):
            prior, post = priors[param][:, j], posts[param][:, j]
            top = float(np.quantile(np.r_[prior, post], 0.995))
            edges = np.linspace(0, top, 41) if prior.min() >= 0 else np.linspace(np.quantile(prior, 0.005), top, 41)
            centres = 0.5 * (edges[1:] + edges[:-1])
            x, y = bq.LinearScale(), bq.LinearScale(min=0.0)
            marks = [
                bq.Lines(
                    x=centres,
                    y=np.histogram(prior, edges, density=True)[0],
                    scales={"x": x, "y": y},
                    colors=["#999999"],
                    fill="bottom",
                    fill_opacities=[0.3],
                ),
                bq.Lines(
                    x=centres,
                    y=np.histogram(post, edges, density=True)[0],
                    scales={"x": x, "y": y},
                    colors=[colours.get(ch, "#1f77b4")],
                    stroke_width=2,
                ),
            ]
            figures.append(
                bq.Figure(
                    marks=marks,
                    title=f"{labels.get(ch, ch)}: {param}",
                    axes=[
                        bq.Axis(scale=x, tick_format=".2f"),
                        bq.Axis(scale=y, orientation="vertical", tick_format=".1f"),
                    ],
                    layout=w.Layout(width="100%", height="200px"),
                    fig_margin={"top": 30, "bottom": 30, "left": 40, "right": 10},
                )
            )
        return w.GridBox(figures, layout=w.Layout(grid_template_columns="repeat(3, 1fr)", width="100%"))

    names = sorted(posts, key=lambda n: (n != "saturation_roas", n))  # the return itself first, where it was sampled
    picker = w.Dropdown(options=names, value=names[0], description="Parameter")
    body = w.VBox([grid(names[0])])
    picker.observe(lambda change: setattr(body, "children", [grid(change["new"])]), "value")
    return w.VBox([picker, body])
