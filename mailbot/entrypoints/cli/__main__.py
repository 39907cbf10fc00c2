"""``python -m mailbot.entrypoints.cli`` runs the ``mailbot`` command (tests and benchmarks start it so)."""

import sys

from mailbot.entrypoints.cli.main import main

sys.exit(main())
