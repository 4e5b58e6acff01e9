"""The ``botkit`` command, run in-process: exit codes, what goes to stdout and stderr, error lines."""

from __future__ import annotations

import builtins
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from botkit.cli import main
from botkit.core.data import SPLITS, Dataset
from botkit.core.registry import get_info, save_model

UNKNOWN = "nosuchmodel:v1"


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Dataset) -> Path:
    """The session's tiny data set as a CSV with a split column (what the trained model was tested on)."""
    path = tmp_path_factory.mktemp("cli") / "tiny.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "intent", "split"])
        w.writerows((t, y, s) for s in SPLITS for t, y in tiny_dataset.split(s))
    return path


def _error_line(err: str) -> str:
    """The single ``botkit: error:`` line; progress lines may precede it, a traceback never."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("botkit: error:")] == lines[-1:], err
    return lines[-1]


# --------------------------------------------------------------------------------------- help


@pytest.mark.parametrize(
    "argv",
    [[], ["train"], ["eval"], ["models"], ["models", "list"], ["models", "show"], ["models", "promote"],
     ["chat"], ["run"]],
    ids=lambda a: " ".join(a) or "botkit",
)
def test_help_on_every_subcommand_exits_0(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: botkit {' '.join(argv)}".rstrip())


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_installed_botkit_script_prints_help() -> None:
    script = Path(sys.executable).parent / "botkit"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: botkit")
    for command in ("train", "eval", "models", "chat", "run"):
        assert command in out.stdout


# -------------------------------------------------------------------------------- train / eval


def test_train_prints_the_new_tag_on_stdout(
    tiny_csv: Path, model_name: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["train", "--data", str(tiny_csv), "--name", model_name]) == 0
    out, err = capsys.readouterr()
    tag = out.strip()
    assert re.fullmatch(rf"{model_name}:[a-z0-9]+", tag), out
    assert get_info(tag)["stage"] == "staging"
    assert "in-scope accuracy" in err  # the summary goes to stderr, so `tag=$(botkit train)` works


def test_eval_writes_json_with_the_headline_metrics(
    trained, trained_tag: str, tiny_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out_json = tmp_path / "out" / "metrics.json"
    assert main(["eval", "--model", trained_tag, "--data", str(tiny_csv), "--json", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    assert {"in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "per_intent", "confused_pairs",
            "latency"} <= set(doc)
    assert doc["model"] == trained_tag
    # Same model, same test split: the same figures as at training time.
    for key in ("in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1", "per_intent"):
        assert doc[key] == trained.evaluation.metrics[key]
    out = capsys.readouterr().out
    assert f"model {trained_tag} on tiny test split (9 in scope, 3 out of scope)" in out
    assert f"wrote {out_json}" in out


def test_eval_exits_1_when_a_gate_fails(
    trained_tag: str, tiny_csv: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["eval", "--model", trained_tag, "--data", str(tiny_csv)]
    assert main([*argv, "--min-in-scope-accuracy", "1.01"]) == 1
    assert re.search(r"GATE FAILED: in_scope_accuracy \S+ is below the gate 1\.01", capsys.readouterr().err)
    assert main([*argv, "--min-in-scope-accuracy", "0.5"]) == 0


def test_eval_refuses_test_data_with_intents_the_model_does_not_know(
    trained_tag: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["eval", "--model", trained_tag]) == 2  # the bundled data: other intents
    assert "the test data has intents the model" in _error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("garbage")
    (root / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (root / "text.csv").write_text("lorem ipsum\ndolor sit amet\n")
    (root / "lines.jsonl").write_text("{not json\n")
    (root / "clinc.json").write_text("[[[")
    return root


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "{missing}"], "no such file or directory"),
        (["train", "--data", "{garbage}/binary.csv"], "not a readable UTF-8 CSV file"),
        (["train", "--data", "{garbage}/text.csv"], "missing column 'text'"),
        (["train", "--data", "{garbage}/lines.jsonl"], "line 1 is not valid JSON"),
        (["train", "--data", "{garbage}/clinc.json"], "not valid JSON"),
        (["eval", "--model", UNKNOWN, "--data", "{csv}"], "unknown model 'nosuchmodel:v1'"),
        (["eval", "--model", "{tag}", "--data", "{missing}"], "no such file or directory"),
        (["models", "show", UNKNOWN], "unknown model"),
        (["models", "promote", UNKNOWN], "unknown model"),
        (["chat", "--model", UNKNOWN], "unknown model"),
    ],
    ids=["missing-file", "binary-file", "garbage-text", "bad-jsonl", "bad-clinc", "eval-unknown-model",
         "eval-missing-data", "show-unknown-model", "promote-unknown-model", "chat-unknown-model"],
)
def test_user_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, tiny_csv: Path, garbage: Path, trained_tag: str, tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    subst = {"missing": tmp_path / "no" / "such.csv", "garbage": garbage, "csv": tiny_csv, "tag": trained_tag}
    assert main([a.format(**subst) for a in argv]) == 2
    out, err = capsys.readouterr()
    line = _error_line(err)
    assert line.startswith("botkit: error: ")
    assert message in line
    assert not re.search(r"\w+:[a-z0-9]{16}\s*$", out)  # no tag printed


# ------------------------------------------------------------------------------------- models


def test_models_list_shows_the_trained_tag(trained_tag: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "list", "--name", trained_tag.split(":")[0]]) == 0
    out = capsys.readouterr().out
    row = next(ln for ln in out.splitlines() if ln.startswith(trained_tag))
    assert row.split()[1] == "staging"
    assert out.splitlines()[0].split()[:2] == ["tag", "stage"]


def test_models_list_on_an_empty_store_says_so(store: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "list"]) == 0
    assert "no models in" in capsys.readouterr().out


def test_models_show_prints_the_metadata_as_json(trained_tag: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "show", trained_tag]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tag"] == trained_tag
    assert doc["metadata"]["data_name"] == "tiny"


def test_models_promote_without_reviewer_is_rejected_with_reasons(saved_tag: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "promote", saved_tag]) == 1
    out = capsys.readouterr().out
    assert out.startswith("REJECTED") and "reviewer" in out
    assert get_info(saved_tag)["stage"] == "staging"


def test_models_promote_forced_with_reviewer_makes_it_production(trained, saved_tag: str,
                                                                 capsys: pytest.CaptureFixture) -> None:
    # The tiny test model fails the quality rules on the bundled test set: --force overrides them.
    assert main(["models", "promote", saved_tag, "--reviewer", "alice", "--force"]) == 0
    assert get_info(saved_tag)["stage"] == "production"

    name = saved_tag.split(":")[0]
    newer = save_model(trained.model, trained.dataset, trained.evaluation.metrics, name=name)
    assert main(["models", "promote", newer, "--reviewer", "alice", "--force"]) == 0
    capsys.readouterr()
    assert get_info(newer)["stage"] == "production"
    assert get_info(saved_tag)["stage"] == "archived"


# --------------------------------------------------------------------------------------- chat


def test_chat_answers_until_an_empty_line(
    trained, trained_tag: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    lines = iter(["hello there", "what is the boiling point of water", ""])
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(lines))
    assert main(["chat", "--model", trained_tag]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"chatting with {trained_tag}")
    bot_lines = [ln.removeprefix("bot> ") for ln in out.splitlines() if ln.startswith("bot> ")]
    assert len(bot_lines) == 2
    assert bot_lines[0] in trained.model.replies["greeting"]
    assert "[greeting, confidence" in out
