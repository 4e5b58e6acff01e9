"""``python -m botkit.ops.monitor report|simulate ...``: a thin shim to ``botkit monitor ...``."""

import sys

from botkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["monitor", *sys.argv[1:]]))
