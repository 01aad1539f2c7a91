"""``python -m fits``: see :mod:`fits.cli`."""
import sys

from .cli import main

sys.exit(main())
