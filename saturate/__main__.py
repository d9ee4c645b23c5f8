"""``python -m saturate`` runs the console script."""

import sys

from saturate.cli import main

sys.exit(main())
