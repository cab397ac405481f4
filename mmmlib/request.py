"""One fit request: what to fit, where to publish it and how to sample, carried whole from the command line on.

``mmm fit`` and schedules build a :class:`FitRequest`; ``pipeline`` checks it and hands it to the
fitting notebook as one papermill parameter (so the executed notebook shows the request it ran); ``fitting`` reads it
back and ``model.fit`` takes its sampling part. Adding a fit option means adding a field here, not to five signatures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from mmmlib.errors import UsageError


@dataclass(frozen=True)
class FitRequest:
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
        )

    def writing_to(self, out: str | Path) -> FitRequest:
        """The same fit written elsewhere (the staging directory a run is published from)."""
        return replace(self, out=str(out))

    def parameters(self) -> dict[str, Any]:
        """Plain values for papermill (the notebook's ``request`` parameter)."""
        return asdict(self)

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> FitRequest:
        """Back from :meth:`parameters`; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise UsageError(f"Unknown fit request field(s): {', '.join(unknown)}.")
        return cls(**{k: v for k, v in params.items() if k in known})
