"""`python -m hybrid_gp.experiments NAME --scale smoke|paper [--out DIR]`."""

import sys

from . import main

sys.exit(main())
