"""`python -m lerax` is the `lerax` command line."""

from lerax.plugin.cli import main

raise SystemExit(main())
