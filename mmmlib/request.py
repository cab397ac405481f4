"""One request: what to fit or import, where to publish it and how, carried whole from the command line on.

``mmm fit`` and schedules build a :class:`FitRequest`, ``mmm import`` an :class:`ImportRequest`; ``pipeline`` checks
it and hands it to its notebook as one papermill parameter (so the executed notebook shows the request it ran);
``fitting`` / ``importing`` read it back. Adding an option means adding a field here, not to five signatures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from mmmlib.errors import UsageError


class _Request:
    """What both requests share: their papermill form and a copy written elsewhere."""

    out: str

    def writing_to(self, out: str | Path) -> Any:
        """The same request written elsewhere (the staging directory a run is published from)."""
        return replace(self, out=str(out))  # type: ignore[type-var]

    def parameters(self) -> dict[str, Any]:
        """Plain values for papermill (the notebook's ``request`` parameter)."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> Any:
        """Back from :meth:`parameters`; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(params) - known)
        if unknown:
            raise UsageError(f"Unknown request field(s): {', '.join(unknown)}.")
        return cls(**{k: v for k, v in params.items() if k in known})


@dataclass(frozen=True)
class FitRequest(_Request):
    """A fit of ``data`` with ``config`` published at ``out``; ``chains``/``tune``/``draws`` override the mode's."""

    data: str
    config: str
    out: str
    mode: str = "quick"
    seed: int = 0
    sampler: str | None = None
    client: str | None = None
    chains: int | None = None
    tune: int | None = None
    draws: int | None = None
    previous: str | None = None  # a geo run whose structure a refit keeps (mmmlib.refresh); "": none, None: look

    @property
    def overrides(self) -> dict[str, int | None]:
        """The power user's sampler settings (None: the mode's)."""
        return {"chains": self.chains, "tune": self.tune, "draws": self.draws}

    def checked(self) -> FitRequest:
        """The request with absolute paths, after its mode and overrides are checked (a usage error if not)."""
        from mmmlib.model import sampler_settings

        try:
            sampler_settings(self.mode, **self.overrides)
        except ValueError as exc:
            raise UsageError(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from exc
        # out: not resolve(), a writer's link at the run's name must not move the run
        return replace(
            self,
            data=str(Path(self.data).resolve()),
            config=str(Path(self.config).resolve()),
            out=os.path.abspath(self.out),
            previous=os.path.abspath(self.previous) if self.previous else self.previous,
        )


IMPORT_KINDS = ("meridian", "pymc-marketing")  # whose saved models ``mmm import`` turns into runs


@dataclass(frozen=True)
class ImportRequest(_Request):
    """A model fitted elsewhere (``kind``, saved at ``model``) published as a run at ``out``, with no refit.

    ``kpi_type`` / ``revenue_per_kpi`` say what the KPI is where the saved model cannot (as in a fit's config).
    """

    kind: str
    model: str
    out: str
    client: str | None = None
    kpi_type: str | None = None
    revenue_per_kpi: float | None = None

    def checked(self) -> ImportRequest:
        """The request with absolute paths; an unknown kind or a missing model file is a usage error."""
        if self.kind not in IMPORT_KINDS:
            raise UsageError(f"Unknown model kind {self.kind!r}; mmm imports {' and '.join(IMPORT_KINDS)} models.")
        if not Path(self.model).is_file():
            raise UsageError(f"No model file at {self.model}.")
        if self.kpi_type not in (None, "revenue", "count"):
            raise UsageError("kpi_type must be revenue or count.")
        return replace(self, model=str(Path(self.model).resolve()), out=os.path.abspath(self.out))
