"""``python -m lakeforge`` and the script spark-submit runs (see spark-submit.sh)."""

import os
import sys

# Run as a script (spark-submit), Python puts this file's folder first on sys.path, where
# lakeforge's own modules (``io``, ...) would shadow the standard library's for every
# later import. The package is importable from the --py-files zip or the install.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

from lakeforge.cli.main import main

if __name__ == "__main__":
    main()
