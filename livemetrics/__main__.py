"""``python -m livemetrics``: the same command line as ``livemetrics``."""

import sys

from operations.cli import main

sys.exit(main())
