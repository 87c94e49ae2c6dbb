"""``python -m impasto.bench``: the side-by-side benchmark (see :mod:`impasto.bench.perf`)."""

import sys

from impasto.bench.perf import main

sys.exit(main())
