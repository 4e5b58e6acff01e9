"""``python -m botkit.ops.bench [options]``: the same as ``botkit bench run [options]``."""

import sys

from botkit.cli import main

sys.exit(main(["bench", "run", *sys.argv[1:]]))
