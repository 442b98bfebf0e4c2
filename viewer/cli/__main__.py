"""python -m twinview.cli: the same as the twinview command."""

import sys

from twinview.cli import main

sys.exit(main())
