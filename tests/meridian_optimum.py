"""Score a budget split with Meridian's own Analyzer beside Meridian's BudgetOptimizer optimum (for the import tests).

Run in the Meridian environment::

    .venv-meridian/bin/python -I tests/meridian_optimum.py MODEL.binpb SPLIT.json OUT.json

SPLIT.json is ``{"budget": B, "shares": {channel: share}}``: a total budget over the model's whole window and how it is
split. Meridian's ``BudgetOptimizer`` (its defaults: fixed budget, each channel within ±30 % of its historical share,
historical flighting) gives its optimum for B; the same optimizer, asked for the split as its starting point
(``pct_of_spend``), scores that split with the Analyzer (its ``nonoptimized_data``). Both totals are written to OUT.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(model_path: str, split_path: str, out_path: str) -> None:
    warnings.filterwarnings("ignore")
    from meridian.analysis import optimizer
    from meridian.schema.serde import meridian_serde

    mmm = meridian_serde.load_meridian(model_path)
    split = json.loads(open(split_path).read())
    channels = [str(c) for c in mmm.input_data.media_channel.values]
    shares = [float(split["shares"][c]) for c in channels]
    budget = float(split["budget"])
    opt = optimizer.BudgetOptimizer(mmm)
    best = opt.optimize(budget=budget, fixed_budget=True)
    ours = opt.optimize(budget=budget, fixed_budget=True, pct_of_spend=shares)
    result = {
        "channels": channels,
        "meridian_optimal_spend": [float(v) for v in best.optimized_data.spend.values],
        "meridian_optimal_outcome": float(best.optimized_data.attrs["total_incremental_outcome"]),
        "ours_spend": [float(v) for v in ours.nonoptimized_data.spend.values],
        "ours_outcome": float(ours.nonoptimized_data.attrs["total_incremental_outcome"]),
        "historical_spend": [float(v) for v in best.nonoptimized_data.spend.values],
    }
    with open(out_path, "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:4])
