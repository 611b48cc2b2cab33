"""``python -m dplearn ...`` is the ``dplearn`` command (e.g. where the script is not on the PATH)."""

import sys

from dplearn.cli import main

if __name__ == "__main__":
    sys.exit(main())
