"""The facilitator kit stays usable: the slides render offline, the cheat sheet fits a page, every RACI row
has exactly one accountable role, and the agendas add up to their day."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
WS = ROOT / "workshops"


def test_the_slides_render_to_a_reveal_deck_offline(tmp_path: Path) -> None:
    deck = WS / "slides" / "workshop_slides.ipynb"
    slides = [c for c in nbformat.read(deck, as_version=4).cells
              if c.metadata.get("slideshow", {}).get("slide_type") in ("slide", "subslide")]
    r = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "slides", str(deck), "--output-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    html = (tmp_path / "workshop_slides.slides.html").read_text(encoding="utf-8")
    assert html.count("<section") >= len(slides) >= 12
    assert "p95" in html and "canary" in html.lower()


def test_the_cheat_sheet_fits_one_page_and_defines_what_the_feedback_asked_about() -> None:
    for path in (WS / "cheatsheet.md", WS / "de" / "spickzettel.md"):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) <= 70, f"{path.name}: {len(lines)} lines is more than one printed page"
    text = (WS / "cheatsheet.md").read_text(encoding="utf-8")
    for term in ("p50 / p95 / p99", "OOS recall", "PSI", "drift", "canary", "shadow", "rolling update", "RACI"):
        assert term in text, term


def test_every_raci_row_has_exactly_one_accountable_role() -> None:
    text = (WS / "culture.md").read_text(encoding="utf-8")
    table = text.split("## 1. Who owns which decision (RACI)", 1)[1].split("\n\n", 3)[2]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| decision")]
    assert len(rows) >= 8
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        accountable = [c for c in cells if re.search(r"\bA\b", c.replace("*", ""))]
        assert len(accountable) == 1, row


def _minutes(path: Path) -> int:
    return sum(int(m) for m in re.findall(r"^\| [\d:]+ \| (\d+) \|", path.read_text(encoding="utf-8"), re.M))


def test_the_agendas_add_up_to_their_day_in_both_languages() -> None:
    for name in ("agenda_full_day.md", "de/agenda_ganztag.md"):
        assert _minutes(WS / name) == 8 * 60, name
    for name in ("agenda_half_day.md", "de/agenda_halbtag.md"):
        assert _minutes(WS / name) == 4 * 60, name
    for name in ("agenda_full_day.md", "agenda_half_day.md"):
        assert "06_data_pipelines" in (WS / name).read_text(encoding="utf-8"), f"{name}: notebook 06 has no slot"
