"""One thread through the day: the model handed over in 02 is the one 03-05 (and 08) use, with the same figures.

Each step runs in a child interpreter, as a notebook kernel would: the home must be chosen before
botkit's settings are first imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_STEP = """
import json, sys
from botkit.teaching.notebooks import hand_over, shown, thread_bot, thread_home
home = thread_home(start=sys.argv[1] == "start")
bot = thread_bot(by=sys.argv[2])
m = bot.evaluation.metrics
print(json.dumps({"tag": bot.tag, "acc": m["in_scope_accuracy"], "oos": m["oos_recall"],
                  "home": str(home), "shown": shown(home / "reports" / "x.md")}))
"""


def _step(nb_home: Path, how: str, by: str) -> dict:
    env = {**os.environ, "BOTKIT_NB_HOME": str(nb_home), "BENTOML_DO_NOT_TRACK": "true"}
    r = subprocess.run([sys.executable, "-c", _STEP, how, by], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_bot_handed_over_is_the_one_the_next_notebooks_get_with_the_same_figures(tmp_path: Path) -> None:
    first = _step(tmp_path, "start", "02")  # a fresh home: nothing handed over yet, so it trains (as alone)
    handed = json.loads((Path(first["home"]) / "thread.json").read_text())
    later = _step(tmp_path, "join", "04")  # joins: loads the handed-over model from the store
    assert handed == {"tag": first["tag"], "by": "02"}
    assert later["tag"] == first["tag"] and later["home"] == first["home"]
    assert (later["acc"], later["oos"]) == (first["acc"], first["oos"])  # prints the same either way
    assert first["shown"] == "<home>/reports/x.md"  # never an absolute temp path in an output
