"""``python -m livemetrics``: the same command line as ``livemetrics``."""

import sys

from livemetrics.cli import main

sys.exit(main())
