"""`python -m mmmlib` is the `mmm` command."""

from mmmlib.cli import main

raise SystemExit(main())
