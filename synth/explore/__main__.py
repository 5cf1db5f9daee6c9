"""``python -m synth.explore``: see ``synth.explore.cli``."""

import sys

from .cli import main

sys.exit(main())
