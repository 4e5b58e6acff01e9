"""Start one replica from its spec file (``python -m botkit.ops.cluster.launch SPEC.json``).

supervisord runs this; it reads the command and environment the cluster wrote for the replica
and ``exec``s BentoML in place, so supervisord's pid is BentoML's arbiter. Reading the spec at
each start is what lets ``Cluster.restart_replica(model=...)`` change the model of one replica.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> None:
    spec = json.loads(open(argv[0], encoding="utf-8").read())  # noqa: SIM115 - exec follows
    os.execvpe(spec["command"][0], spec["command"], {**os.environ, **spec["env"]})


if __name__ == "__main__":
    main(sys.argv[1:])
