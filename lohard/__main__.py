"""``python -m lohard`` runs the command-line interface."""

from lohard.cli import main

raise SystemExit(main())
