"""``python -m capsule_lib.cli``: the ``capsule`` command without its installed script."""

import sys

from . import main

sys.exit(main())
