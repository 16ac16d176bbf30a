"""`python -m tinydancer_duck.cli`: the `tinydancer` command without the installed script."""

import sys

from ._main import main

sys.exit(main())
