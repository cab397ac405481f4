"""mmmlib: the Marketing Mix Modeling workbench behind the notebooks, dashboards and the `mmm` command.

Layers follow Meridian's split: ``data`` (read, detect, validate) → ``model`` (fit) →
``analysis`` (numbers from the posterior) → ``widgets``/``reports`` (presentation).
Importing this package is cheap: nothing here imports pymc until a fit is asked for.
"""

__version__ = "0.1.0"
