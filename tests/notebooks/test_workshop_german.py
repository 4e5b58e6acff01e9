"""The German handouts stay in step with the English material: same exercises, same checks, same blocks.

And the German variant of exercise 01 (the German bot, ``shopbot-de``) behaves like every exercise:
solved, every check says done; unsolved, every check gives a hint.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
WS = ROOT / "workshops"
DE = WS / "de"
HANDOUTS = ("README.md", "agenda_ganztag.md", "agenda_halbtag.md", "uebungen.md", "spickzettel.md",
            "feedback_formular.md")
VARIANT = "01_bot_bauen_und_bewerten.ipynb"


def _checks(nb) -> list[str]:
    names: list[str] = []
    for c in nb.cells:
        if "check" in c.metadata.get("tags", []):
            names += [n for n in re.findall(r"workshop\.(check\w*)\(", c.source) if n not in names]
    return names


def _english() -> dict[str, list[str]]:
    return {p.stem: _checks(nbformat.read(p, as_version=4)) for p in sorted((WS / "exercises").glob("*.ipynb"))}


def test_every_german_handout_exists_and_is_not_empty() -> None:
    for name in HANDOUTS:
        assert len((DE / name).read_text(encoding="utf-8").split()) > 100, name


def test_german_exercise_instructions_cover_the_same_exercises_with_the_same_checks() -> None:
    text = (DE / "uebungen.md").read_text(encoding="utf-8")
    german = {m.group(1): [c.strip(" `") for c in m.group(2).split(",")]
              for m in re.finditer(r"^Notebook: `(\w+)` · Checks: (.+)$", text, re.M)}
    assert german == _english()
    for stem in german:  # every exercise has hints, numbered
        section = text.split(f"Notebook: `{stem}`", 1)[1].split("\n## ", 1)[0]
        assert "Tipp" in section, stem


def _exercises_named(text: str, word: str) -> set[str]:
    return set(re.findall(rf"{word} (0\d)", text))


def test_german_agendas_schedule_the_same_exercises_and_notebooks() -> None:
    for en, de in (("agenda_full_day.md", "agenda_ganztag.md"), ("agenda_half_day.md", "agenda_halbtag.md")):
        en_text, de_text = (WS / en).read_text(encoding="utf-8"), (DE / de).read_text(encoding="utf-8")
        en_ex = set(re.findall(r"exercises/(0\d)_", en_text))
        assert en_ex == _exercises_named(de_text, "Übung"), (en, de)
        assert set(re.findall(r"notebooks/(0\d)_", en_text)) == set(re.findall(r"notebooks/(0\d)_", de_text)), de


def test_german_cheat_sheet_and_feedback_form_match_the_english_ones() -> None:
    def glossary_rows(path: Path) -> int:
        body = path.read_text(encoding="utf-8").split("## Glos", 1)[1].split("\n## ", 1)[0]
        return len(re.findall(r"^\| \*\*", body, re.M))

    assert glossary_rows(WS / "cheatsheet.md") == glossary_rows(DE / "spickzettel.md")

    def blocks(path: Path) -> list[str]:
        line = next(ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("| `block`"))
        return re.findall(r"`([^`]+)`", line.split("|")[3])

    assert blocks(WS / "feedback_form.md") == blocks(DE / "feedback_formular.md")


def test_the_german_variant_has_the_shape_and_checks_of_exercise_01() -> None:
    en = nbformat.read(WS / "exercises" / "01_build_and_evaluate.ipynb", as_version=4)
    for kind in ("exercises", "solutions"):
        de = nbformat.read(DE / kind / VARIANT, as_version=4)
        assert [c.metadata.get("tags", []) for c in de.cells] == [c.metadata.get("tags", []) for c in en.cells]
        assert _checks(de) == _checks(en)
        assert 'data.load("shopbot-de")' in "".join(c.source for c in de.cells)


def _bundled_german_bot() -> bool:
    return (ROOT / "botkit" / "data" / "shopbot-de").is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not _bundled_german_bot(), reason="botkit/data/shopbot-de is not bundled yet (issue 16)")
def test_the_german_variant_solved_passes_and_unsolved_gives_hints(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from botkit.teaching.notebooks import run

    monkeypatch.setenv("BOTKIT_NB_HOME", str(tmp_path / "homes"))
    for kind, want in (("solutions", "✅ done"), ("exercises", "⏳ not yet: ")):
        [r] = run([DE / kind / VARIANT], smoke=True, out_dir=tmp_path / kind, progress=False)
        assert r.ok, f"de/{kind}/{VARIANT} failed at {r.error}"
        nb = nbformat.read(r.output, as_version=4)
        for c in nb.cells:
            if "check" in c.metadata.get("tags", []):
                text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in c.outputs)
                assert want in text and ("✅" not in text if kind == "exercises" else "⏳" not in text), text
