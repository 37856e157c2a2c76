"""``python -m medclass`` is the ``medclass`` command."""

import sys

from .cli.main import main

sys.exit(main())
