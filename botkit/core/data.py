"""Labelled utterances in, a validated and fingerprinted data set out.

Everything downstream (training, evaluation, the model card, the audit log) trusts that a
``Dataset`` has fixed splits, no leakage and a stable fingerprint, so those guarantees are
checked here once, with errors a person can act on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from botkit.core.config import BUNDLED_DATA

__all__ = [
    "FORMATS",
    "OOS",
    "SPLITS",
    "DataError",
    "Dataset",
    "bundled_names",
    "conflicts",
    "load",
    "load_bundled",
    "normalize",
]

OOS = "oos"
SPLITS = ("train", "val", "test")
FORMATS = ("bundled", "csv", "jsonl", "clinc")
DEFAULT_FALLBACKS = (
    "Sorry, I did not understand that. Could you rephrase it?",
    "I am not sure I can help with that. Would you like to talk to a person?",
)

Example = tuple[str, str]


class DataError(ValueError):
    """A data set that cannot be trusted; the message says which file, split or intent and why."""


def normalize(text: str) -> str:
    """The form two utterances are compared in for leakage: case, punctuation and spacing removed."""
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


@dataclass(frozen=True)
class Dataset:
    """Fixed train/val/test splits of ``(text, intent)`` pairs; ``oos`` marks out-of-scope."""

    name: str
    splits: dict[str, list[Example]]
    replies: dict[str, list[str]] = field(default_factory=dict)
    fallback_replies: list[str] = field(default_factory=lambda: list(DEFAULT_FALLBACKS))
    source: str = ""
    language: str = "en"  # ISO 639-1; picks the recipe, polite suffixes and behaviour probes

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}: expected one of {', '.join(SPLITS)}")
        return self.splits.get(name, [])

    @property
    def train(self) -> list[Example]:
        return self.split("train")

    @property
    def val(self) -> list[Example]:
        return self.split("val")

    @property
    def test(self) -> list[Example]:
        return self.split("test")

    @property
    def intents(self) -> list[str]:
        """In-scope intents, sorted; out-of-scope is not an intent."""
        return sorted({y for _, y in self.train if y != OOS})

    @property
    def has_oos(self) -> bool:
        return any(y == OOS for _, y in self.train)

    def sizes(self) -> dict[str, dict[str, int]]:
        return {
            s: {"in_scope": sum(y != OOS for _, y in ex), "oos": sum(y == OOS for _, y in ex)}
            for s, ex in self.splits.items()
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical content: same examples and replies, same hash, whatever the file format."""
        canon = {
            "splits": {s: sorted(self.splits.get(s, [])) for s in SPLITS},
            "replies": {k: list(v) for k, v in sorted(self.replies.items()) if v},
            "fallback": list(self.fallback_replies),
        }
        blob = json.dumps(canon, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def validate(self, *, min_per_intent: int = 5, leakage: str = "error") -> Dataset:
        """Raise ``DataError`` on anything that would make training or evaluation lie.

        ``leakage="warn"`` keeps utterances repeated across splits and warns with their count:
        published benchmarks (CLINC150 has a few dozen) are evaluated as published, so that
        figures compare; your own data should not leak.
        """
        for s in self.splits:
            if s not in SPLITS:
                raise DataError(f"unknown split {s!r}: expected one of {', '.join(SPLITS)}")
        if not self.train:
            raise DataError("the train split is empty")
        seen: dict[str, str] = {}
        leaks: list[str] = []
        for s in SPLITS:
            for i, (text, intent) in enumerate(self.splits.get(s, [])):
                if not isinstance(text, str) or not text.strip():
                    raise DataError(f"empty text in split {s!r}, example {i + 1} (intent {intent!r})")
                if not isinstance(intent, str) or not intent.strip():
                    raise DataError(f"empty intent in split {s!r}, example {i + 1} ({text[:40]!r})")
                key = normalize(text)
                if key in seen and seen[key] != s:
                    if leakage == "error":
                        raise DataError(
                            f"leakage: {text!r} is in both {seen[key]!r} and {s!r}; "
                            "an utterance may only be in one split"
                        )
                    leaks.append(text)
                seen.setdefault(key, s)
        if leaks:
            warnings.warn(f"{self.source or self.name}: {len(leaks)} utterance(s) appear in more than one split "
                          f"(e.g. {leaks[0]!r}); kept as published", stacklevel=2)
        counts = Counter(y for _, y in self.train if y != OOS)
        if len(counts) < 2:
            raise DataError(f"need at least 2 in-scope intents in train, found {len(counts)}")
        few = sorted(i for i, n in counts.items() if n < min_per_intent)
        if few:
            shown = ", ".join(f"{i} ({counts[i]})" for i in few[:5])
            raise DataError(
                f"too few training examples (minimum {min_per_intent}) for {len(few)} intent(s): {shown}"
            )
        known = set(counts) | {OOS}
        for s in ("val", "test"):
            unknown = sorted({y for _, y in self.splits.get(s, [])} - known)
            if unknown:
                raise DataError(
                    f"inconsistent labels: split {s!r} has intent(s) not in train: {', '.join(unknown[:5])}"
                )
        missing_replies = [i for i in self.replies if i not in known]
        if missing_replies:
            raise DataError(f"replies given for unknown intent(s): {', '.join(sorted(missing_replies)[:5])}")
        return self

    def reply_variants(self, intent: str) -> list[str]:
        return self.replies.get(intent) or [f"I understood that as '{intent.replace('_', ' ')}'."]


# ---------------------------------------------------------------------------------------- loaders


def load_bundled(path: Path | str = BUNDLED_DATA) -> Dataset:
    """The project's own format: ``bot.json``, ``oos.json`` and ``intents/<intent>.json``."""
    root = Path(path)
    bot = _read_json(root / "bot.json")
    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    replies: dict[str, list[str]] = {}
    intent_files = sorted((root / "intents").glob("*.json"))
    if not intent_files:
        raise DataError(f"{root / 'intents'}: no intent files found")
    for f in intent_files:
        doc = _read_json(f)
        intent = doc.get("intent") or f.stem
        if doc.get("replies"):
            replies[intent] = list(doc["replies"])
        for s in SPLITS:
            splits[s].extend((t, intent) for t in doc.get(s, []))
    oos_file = root / "oos.json"
    if oos_file.exists():
        oos = _read_json(oos_file)
        for s in SPLITS:
            splits[s].extend((t, OOS) for t in oos.get(s, []))
    return Dataset(
        name=bot.get("name", root.name),
        splits=splits,
        replies=replies,
        fallback_replies=list(bot.get("fallback_replies") or DEFAULT_FALLBACKS),
        source=str(root),
        language=str(bot.get("language", "en")),
    )


def _load_clinc(path: Path) -> Dataset:
    doc = _read_json(path)
    if not isinstance(doc, dict) or "train" not in doc:
        raise DataError(f"{path}: not in the CLINC150 layout (expected keys train, val, test, oos_*)")
    mapping = {"train": "train", "val": "val", "test": "test",
               "oos_train": "train", "oos_val": "val", "oos_test": "test"}
    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for key, items in doc.items():
        if key not in mapping:
            raise DataError(f"{path}: unknown split {key!r} in CLINC layout")
        if not isinstance(items, list):
            raise DataError(f"{path}: {key} must be a list of [text, intent] pairs")
        for i, item in enumerate(items):
            if not (isinstance(item, list | tuple) and len(item) == 2):
                raise DataError(f"{path}: {key}[{i}] is not a [text, intent] pair")
            text, intent = item
            splits[mapping[key]].append((str(text), OOS if key.startswith("oos_") else str(intent)))
    return Dataset(name=path.stem, splits=splits, source=str(path))


def _rows_to_dataset(path: Path, rows: list[dict[str, str]], seed: int) -> Dataset:
    if not rows:
        raise DataError(f"{path}: no rows")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise DataError(f"{path}: row {i + 1} is not an object with text and intent")
        for col in ("text", "intent"):
            if col not in r:
                raise DataError(f"{path}: row {i + 1}: missing column {col!r} (found: {', '.join(map(str, r))})")
            if r[col] is not None and not isinstance(r[col], str):
                raise DataError(f"{path}: row {i + 1}: {col} must be text, got {type(r[col]).__name__}")
    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    if any("split" in r for r in rows):  # a split column: every row must name a valid split
        for i, r in enumerate(rows):
            s = (r.get("split") or "").strip()
            if s not in SPLITS:
                raise DataError(f"{path}: row {i + 1}: unknown split {s!r}: expected one of {', '.join(SPLITS)}")
            splits[s].append((r["text"] or "", (r["intent"] or "").strip()))
    else:  # no split column: a seeded, stratified 70/10/20 split, the same on every machine
        by_intent: dict[str, list[str]] = {}
        for r in rows:
            by_intent.setdefault((r["intent"] or "").strip(), []).append(r["text"] or "")
        rng = random.Random(seed)
        for intent, texts in sorted(by_intent.items()):
            texts = sorted(texts)
            rng.shuffle(texts)
            n_val, n_test = max(1, len(texts) // 10), max(1, len(texts) // 5)
            splits["val"] += [(t, intent) for t in texts[:n_val]]
            splits["test"] += [(t, intent) for t in texts[n_val : n_val + n_test]]
            splits["train"] += [(t, intent) for t in texts[n_val + n_test :]]
    replies_file = path.with_suffix(".replies.json")
    replies = _read_json(replies_file) if replies_file.exists() else {}
    return Dataset(name=path.stem, splits=splits, replies=replies, source=str(path))


def load(path: Path | str | None = None, fmt: str | None = None, *, seed: int = 42,
         min_per_intent: int = 5) -> Dataset:
    """Load and validate a data set; ``fmt`` is guessed from the path when not given.

    CSV/JSONL need ``text`` and ``intent`` columns (``oos`` marks out-of-scope) and may have a
    ``split`` column; replies may sit next to the file as ``<name>.replies.json``.
    """
    if path is None:
        return load_bundled().validate(min_per_intent=min_per_intent)
    p = Path(path)
    if not p.exists() and str(path) in bundled_names():  # a bundled data set by name: shopbot-de
        return load_bundled(BUNDLED_DATA.parent / str(path)).validate(min_per_intent=min_per_intent)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    fmt = fmt or _guess_format(p)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "bundled":
        ds = load_bundled(p)
    elif fmt == "clinc":
        ds = _load_clinc(p)
    elif fmt == "csv":
        try:
            with p.open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{p}: not a readable UTF-8 CSV file ({exc})") from None
        ds = _rows_to_dataset(p, rows, seed)
    else:
        rows = []
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}: line {i + 1} is not valid JSON ({exc.msg})") from None
        ds = _rows_to_dataset(p, rows, seed)
    # A published benchmark is evaluated as published; anything else must not leak.
    return ds.validate(min_per_intent=min_per_intent, leakage="warn" if fmt == "clinc" else "error")


def bundled_names() -> list[str]:
    """Names of the data sets shipped in ``botkit/data`` (``--data NAME`` loads one)."""
    return sorted(d.name for d in BUNDLED_DATA.parent.iterdir() if (d / "bot.json").is_file())


def conflicts(ds: Dataset, *, min_similarity: float = 0.9, block: int = 2000) -> list[dict]:
    """Near-duplicate utterances with different intents, across all splits.

    Two texts conflict when the cosine similarity of their character-trigram sets (normalised
    text) is at least ``min_similarity``: the same question labelled two ways teaches the model
    noise and makes its evaluation unfair. Sparse products in blocks: CLINC150 size in seconds.
    Returned most similar first.
    """
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize as l2

    items = [(t, y, s) for s in SPLITS for t, y in ds.splits.get(s, [])]
    if len(items) < 2:
        return []
    vec = CountVectorizer(analyzer="char_wb", ngram_range=(3, 3), binary=True, preprocessor=normalize)
    x = l2(vec.fit_transform([t for t, _, _ in items]).astype(np.float32))
    labels = np.asarray([y for _, y, _ in items], dtype=object)
    found = []
    for start in range(0, len(items), block):
        sims = (x[start:start + block] @ x.T).tocoo()
        keep = (sims.data >= min_similarity) & (sims.col > sims.row + start)
        for i, j, v in zip(sims.row[keep] + start, sims.col[keep], sims.data[keep], strict=True):
            if labels[i] != labels[j]:
                found.append((float(v), int(i), int(j)))
    found.sort(key=lambda f: -f[0])
    return [{"similarity": round(v, 3), "a": items[i][0], "a_intent": items[i][1], "a_split": items[i][2],
             "b": items[j][0], "b_intent": items[j][1], "b_split": items[j][2]} for v, i, j in found]


def _guess_format(p: Path) -> str:
    if p.is_dir():
        return "bundled"
    return {".csv": "csv", ".jsonl": "jsonl", ".json": "clinc"}.get(p.suffix.lower(), "csv")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def synthetic(n_intents: int = 150, per_intent: tuple[int, int, int] = (100, 20, 30),
              oos: tuple[int, int, int] = (100, 100, 1000), seed: int = 0) -> Dataset:
    """A CLINC150-sized stand-in for benchmarks: not language, but the same shape and sparsity.

    Each intent owns a few topic words and shares filler words with every other intent, so
    the model has real work to do; out-of-scope lines use words no intent owns.
    """
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "du", "ga", "zi", "bo", "fe", "ho"]

    def word() -> str:
        return "".join(rng.choice(syll) for _ in range(rng.randint(2, 4)))

    filler = [word() for _ in range(300)]
    topics = [[word() for _ in range(6)] for _ in range(n_intents)]
    foreign = [word() for _ in range(400)]

    def utter(vocab: list[str]) -> str:
        words = rng.sample(vocab, k=min(len(vocab), rng.randint(1, 3))) + rng.sample(filler, k=rng.randint(2, 7))
        rng.shuffle(words)
        return " ".join(words)

    splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
    seen: set[str] = set()

    def add(split: str, vocab: list[str], label: str, n: int) -> None:
        while n:
            u = utter(vocab)
            if u not in seen:
                seen.add(u)
                splits[split].append((u, label))
                n -= 1

    for i, vocab in enumerate(topics):
        for s, n in zip(SPLITS, per_intent, strict=True):
            add(s, vocab, f"intent_{i:03d}", n)
    for s, n in zip(SPLITS, oos, strict=True):
        add(s, foreign, OOS, n)
    return Dataset(name=f"synthetic{n_intents}", splits=splits)
