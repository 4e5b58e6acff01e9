"""One thread through the day: the model handed over in 02 is the one 03-05 use; alone, each trains the same bot.

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
def test_the_bot_handed_over_is_the_one_the_next_notebooks_get_and_alone_they_train_the_same(tmp_path: Path) -> None:
    first = _step(tmp_path / "day", "start", "02")
    later = _step(tmp_path / "day", "join", "04")
    alone = _step(tmp_path / "alone", "join", "05")
    assert later["tag"] == first["tag"] and later["home"] == first["home"]
    assert json.loads((Path(first["home"]) / "thread.json").read_text())["tag"] == first["tag"]
    assert alone["tag"] != first["tag"]  # a model of its own ...
    assert (alone["acc"], alone["oos"]) == (first["acc"], first["oos"]) == (later["acc"], later["oos"])  # ... same
    assert first["shown"] == "<home>/reports/x.md"  # never an absolute temp path in an output
