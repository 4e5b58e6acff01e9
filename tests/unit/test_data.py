"""Loaders, validation and fingerprints: the guarantees everything downstream trusts."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest

from botkit.core.data import OOS, SPLITS, DataError, Dataset, load, load_bundled, normalize

# ------------------------------------------------------------------------------------ helpers


def _rows(ds: Dataset, *, with_split: bool = True) -> list[dict[str, str]]:
    rows = []
    for s in SPLITS:
        for text, intent in ds.split(s):
            rows.append({"text": text, "intent": intent, "split": s} if with_split else
                        {"text": text, "intent": intent})
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_clinc(path: Path, ds: Dataset, **extra: list) -> Path:
    doc: dict[str, list] = {}
    for s in SPLITS:
        doc[s] = [[t, y] for t, y in ds.split(s) if y != OOS]
        doc[f"oos_{s}"] = [[t, OOS] for t, y in ds.split(s) if y == OOS]
    doc.update(extra)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _write_bundled(root: Path, ds: Dataset) -> Path:
    (root / "intents").mkdir(parents=True)
    (root / "bot.json").write_text(json.dumps({"name": ds.name}))
    for intent in ds.intents:
        doc = {"intent": intent, "replies": ds.replies.get(intent, [])}
        doc.update({s: [t for t, y in ds.split(s) if y == intent] for s in SPLITS})
        (root / "intents" / f"{intent}.json").write_text(json.dumps(doc))
    (root / "oos.json").write_text(json.dumps({s: [t for t, y in ds.split(s) if y == OOS] for s in SPLITS}))
    return root


def _writer(fmt: str):
    return {"csv": _write_csv, "jsonl": _write_jsonl}[fmt]


def _with(ds: Dataset, **splits: list[tuple[str, str]]) -> Dataset:
    """A copy of ``ds`` with some splits replaced (the fixture itself is shared and never mutated)."""
    new = {s: list(ds.split(s)) for s in SPLITS}
    new.update(splits)
    return Dataset(ds.name, new, dict(ds.replies))


def _sorted_splits(ds: Dataset) -> dict[str, list[tuple[str, str]]]:
    return {s: sorted(ds.split(s)) for s in SPLITS}


# ------------------------------------------------------------------------------- bundled data


@pytest.fixture(scope="module")
def bundled() -> Dataset:
    return load()  # the bundled shopbot data, validated


def test_bundled_data_has_at_least_25_intents_including_the_conversational_ones(bundled: Dataset) -> None:
    assert len(bundled.intents) >= 25
    assert {"greeting", "goodbye", "thanks", "human_handoff"} <= set(bundled.intents)
    assert OOS not in bundled.intents


def test_bundled_data_has_at_least_40_10_15_examples_per_intent(bundled: Dataset) -> None:
    for split, floor in zip(SPLITS, (40, 10, 15), strict=True):
        counts = Counter(y for _, y in bundled.split(split) if y != OOS)
        assert set(counts) == set(bundled.intents), split
        short = {i: n for i, n in counts.items() if n < floor}
        assert not short, f"{split}: fewer than {floor} examples for {short}"


def test_bundled_data_has_at_least_100_50_150_out_of_scope_examples(bundled: Dataset) -> None:
    sizes = bundled.sizes()
    assert sizes["train"]["oos"] >= 100
    assert sizes["val"]["oos"] >= 50
    assert sizes["test"]["oos"] >= 150


def test_every_bundled_intent_has_at_least_two_replies(bundled: Dataset) -> None:
    assert set(bundled.replies) == set(bundled.intents)
    few = {i: len(r) for i, r in bundled.replies.items() if len([x for x in r if x.strip()]) < 2}
    assert not few
    assert len(bundled.fallback_replies) >= 2


def test_no_normalised_bundled_utterance_is_in_two_splits(bundled: Dataset) -> None:
    keys = {s: {normalize(t) for t, _ in bundled.split(s)} for s in SPLITS}
    for a, b in combinations(SPLITS, 2):
        assert not keys[a] & keys[b], f"{a}/{b} share {sorted(keys[a] & keys[b])[:3]}"


# ------------------------------------------------------------------------------ CSV and JSONL


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_split_column_keeps_the_given_splits(tmp_path: Path, tiny_dataset: Dataset, fmt: str) -> None:
    path = _writer(fmt)(tmp_path / f"tiny.{fmt}", _rows(tiny_dataset))
    ds = load(path)
    assert _sorted_splits(ds) == _sorted_splits(tiny_dataset)
    assert ds.name == "tiny"
    assert ds.replies == {}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_without_split_column_the_split_is_seeded_stratified_and_deterministic(
    tmp_path: Path, fmt: str
) -> None:
    rows = [{"text": f"{intent} request number {i}", "intent": intent}
            for intent in ("alpha", "beta", "gamma", OOS) for i in range(10)]
    path = _writer(fmt)(tmp_path / f"nosplit.{fmt}", rows)

    first, again, other_seed = load(path, seed=7), load(path, seed=7), load(path, seed=8)

    assert first.splits == again.splits
    assert first.fingerprint() == again.fingerprint()
    assert other_seed.fingerprint() != first.fingerprint()
    # 10 examples per label: val = max(1, 10 // 10) = 1, test = max(1, 10 // 5) = 2, train = 10 - 3 = 7.
    for label in ("alpha", "beta", "gamma", OOS):
        assert [sum(y == label for _, y in first.split(s)) for s in SPLITS] == [7, 1, 2]
    every = sorted(first.train + first.val + first.test)
    assert every == sorted((r["text"], r["intent"]) for r in rows)


def test_csv_and_jsonl_without_split_column_split_the_same_way(tmp_path: Path) -> None:
    rows = [{"text": f"{intent} question {i}", "intent": intent} for intent in ("a", "b") for i in range(12)]
    from_csv = load(_write_csv(tmp_path / "d.csv", rows), seed=3)
    from_jsonl = load(_write_jsonl(tmp_path / "d.jsonl", rows), seed=3)
    assert from_csv.splits == from_jsonl.splits


def test_replies_file_next_to_the_data_is_loaded(tmp_path: Path, tiny_dataset: Dataset) -> None:
    path = _write_csv(tmp_path / "tiny.csv", _rows(tiny_dataset))
    (tmp_path / "tiny.replies.json").write_text(json.dumps(tiny_dataset.replies))
    ds = load(path)
    assert ds.replies == tiny_dataset.replies
    assert ds.reply_variants("greeting") == tiny_dataset.replies["greeting"]


# -------------------------------------------------------------------------------------- CLINC


def test_clinc_layout_maps_oos_keys_to_the_oos_label(tmp_path: Path, tiny_dataset: Dataset) -> None:
    path = _write_clinc(tmp_path / "data_full.json", tiny_dataset)
    ds = load(path)  # .json is guessed as the CLINC layout
    assert ds.name == "data_full"
    assert _sorted_splits(ds) == _sorted_splits(tiny_dataset)
    assert ds.sizes()["test"] == {"in_scope": 9, "oos": 3}


def test_clinc_labels_in_oos_keys_are_oos_whatever_they_say(tmp_path: Path, tiny_dataset: Dataset) -> None:
    path = _write_clinc(tmp_path / "c.json", tiny_dataset)
    doc = json.loads(path.read_text())
    doc["oos_test"] = [[t, "something_else"] for t, _ in doc["oos_test"]]
    path.write_text(json.dumps(doc))
    assert {y for t, y in load(path).test if t in {x for x, _ in doc["oos_test"]}} == {OOS}


def test_bundled_layout_loads_from_a_folder(tmp_path: Path, tiny_dataset: Dataset) -> None:
    ds = load(_write_bundled(tmp_path / "bot", tiny_dataset))
    assert _sorted_splits(ds) == _sorted_splits(tiny_dataset)
    assert ds.replies == tiny_dataset.replies


# --------------------------------------------------------------------------- validation errors


def test_empty_text_is_refused_naming_split_and_intent(tmp_path: Path, tiny_dataset: Dataset) -> None:
    rows = _rows(tiny_dataset)
    rows[-1]["text"] = "   "
    with pytest.raises(DataError, match=r"empty text in split 'test', example \d+ \(intent 'oos'\)"):
        load(_write_csv(tmp_path / "empty.csv", rows))


def test_unknown_split_in_a_csv_split_column_is_refused(tmp_path: Path, tiny_dataset: Dataset) -> None:
    rows = _rows(tiny_dataset)
    rows[4]["split"] = "dev"
    expected = r"bad\.csv: row 5: unknown split 'dev': expected one of train, val, test"
    with pytest.raises(DataError, match=expected):
        load(_write_csv(tmp_path / "bad.csv", rows))


def test_unknown_split_key_in_the_clinc_layout_is_refused(tmp_path: Path, tiny_dataset: Dataset) -> None:
    path = _write_clinc(tmp_path / "c.json", tiny_dataset, dev=[["hello you", "greeting"]])
    with pytest.raises(DataError, match=r"c\.json: unknown split 'dev' in CLINC layout"):
        load(path)


def test_a_json_file_that_is_not_the_clinc_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"intents": []}))
    with pytest.raises(DataError, match="not in the CLINC150 layout"):
        load(path)


def test_intent_with_too_few_training_examples_is_refused(tiny_dataset: Dataset) -> None:
    train = [(t, y) for t, y in tiny_dataset.train if y != "refund"]
    train += [t for t in tiny_dataset.train if t[1] == "refund"][:3]
    expected = r"too few training examples \(minimum 5\) for 1 intent\(s\): refund \(3\)"
    with pytest.raises(DataError, match=expected):
        _with(tiny_dataset, train=train).validate()
    _with(tiny_dataset, train=train).validate(min_per_intent=3)  # the floor is a parameter


def test_leakage_between_splits_is_refused_after_normalisation(tiny_dataset: Dataset) -> None:
    # "Hello!!" normalises to "hello", which is in train.
    test = [*tiny_dataset.test, ("Hello!!", "greeting")]
    with pytest.raises(DataError, match=r"leakage: 'Hello!!' is in both 'train' and 'test'"):
        _with(tiny_dataset, test=test).validate()


def test_duplicates_inside_one_split_are_not_leakage(tiny_dataset: Dataset) -> None:
    _with(tiny_dataset, train=[*tiny_dataset.train, ("HELLO", "greeting")]).validate()


def test_label_in_test_that_is_not_in_train_is_refused(tiny_dataset: Dataset) -> None:
    test = [*tiny_dataset.test, ("cancel my subscription", "cancel")]
    expected = r"inconsistent labels: split 'test' has intent\(s\) not in train: cancel"
    with pytest.raises(DataError, match=expected):
        _with(tiny_dataset, test=test).validate()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_missing_column_is_refused_naming_it(tmp_path: Path, tiny_dataset: Dataset, fmt: str) -> None:
    rows = [{"utterance": r["text"], "intent": r["intent"]} for r in _rows(tiny_dataset)]
    with pytest.raises(DataError, match=r"missing column 'text' \(found: utterance, intent\)"):
        load(_writer(fmt)(tmp_path / f"cols.{fmt}", rows))


def test_bad_json_line_is_refused_with_its_line_number(tmp_path: Path, tiny_dataset: Dataset) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", _rows(tiny_dataset))
    lines = path.read_text().splitlines()
    lines[2] = '{"text": "where is my order", "intent": '
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl: line 3 is not valid JSON"):
        load(path)


def test_a_file_that_is_not_utf8_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(DataError, match="not a readable UTF-8 CSV file"):
        load(path)


def test_missing_file_and_unknown_format_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or directory"):
        load(tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("text,intent\n")
    expected = re.escape("unknown format 'xml': expected one of bundled, csv, jsonl, clinc")
    with pytest.raises(DataError, match=expected):
        load(tmp_path / "x.csv", fmt="xml")


def test_unknown_split_name_is_refused_by_dataset(tiny_dataset: Dataset) -> None:
    with pytest.raises(DataError, match="unknown split 'dev'"):
        tiny_dataset.split("dev")
    with pytest.raises(DataError, match="unknown split 'dev'"):
        Dataset("d", {**tiny_dataset.splits, "dev": []}).validate()


# -------------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_the_same_for_the_same_content_in_every_format(
    tmp_path: Path, tiny_dataset: Dataset
) -> None:
    no_replies = Dataset("in-code", {s: list(reversed(tiny_dataset.split(s))) for s in SPLITS})
    from_csv = load(_write_csv(tmp_path / "a.csv", _rows(tiny_dataset)))
    from_jsonl = load(_write_jsonl(tmp_path / "b.jsonl", list(reversed(_rows(tiny_dataset)))))
    from_clinc = load(_write_clinc(tmp_path / "c.json", tiny_dataset))
    expected = no_replies.fingerprint()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", expected)
    assert from_csv.fingerprint() == from_jsonl.fingerprint() == from_clinc.fingerprint() == expected

    # With replies: a CSV plus its replies file and the bundled folder match the in-code data set.
    (tmp_path / "a.replies.json").write_text(json.dumps(tiny_dataset.replies))
    assert load(tmp_path / "a.csv").fingerprint() == tiny_dataset.fingerprint()
    from_bundled = load_bundled(_write_bundled(tmp_path / "bot", tiny_dataset))
    assert from_bundled.fingerprint() == tiny_dataset.fingerprint()
    assert tiny_dataset.fingerprint() != expected


@pytest.mark.parametrize("change", ["text", "label", "split", "reply"])
def test_fingerprint_changes_when_one_example_changes(tiny_dataset: Dataset, change: str) -> None:
    train, test = list(tiny_dataset.train), list(tiny_dataset.test)
    replies = dict(tiny_dataset.replies)
    if change == "text":
        train[0] = (train[0][0] + "!", train[0][1])
    elif change == "label":
        train[0] = (train[0][0], "refund")
    elif change == "split":
        test.append(train.pop(0))
    else:
        replies["greeting"] = [*replies["greeting"][:-1], "Hi!"]
    splits = {"train": train, "val": list(tiny_dataset.val), "test": test}
    changed = Dataset(tiny_dataset.name, splits, replies)
    assert changed.fingerprint() != tiny_dataset.fingerprint()


# ----------------------------------------------------------------------------- regressions


@pytest.mark.parametrize(
    ("name", "content"),
    [("number.jsonl", "42\n"), ("list.jsonl", '{"text": "hi", "intent": "a"}\n[1, 2]\n'),
     ("int-intent.jsonl", '{"text": "hi", "intent": 5}\n'), ("clinc.json", '{"train": 5}')],
    ids=["jsonl-number", "jsonl-list", "jsonl-int-intent", "clinc-not-a-list"],
)
def test_valid_json_of_the_wrong_shape_is_a_data_error(tmp_path: Path, name: str, content: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError):
        load(tmp_path / name)
