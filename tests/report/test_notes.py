import pytest

from scalarize.errors import ScalarizeError
from scalarize.report.notes import Notes, read_notes, reading_section, write_notes
from scalarize.runs.layout import NOTES


def test_notes_round_trip_and_become_the_reading_section(tmp_path):
    assert read_notes(tmp_path) is None and reading_section(tmp_path, tmp_path) is None
    notes = Notes(chance={"flat": 0.25}, test_sizes={"flat": 1000},
                  reading=["- Δ: +2.0% at s.", "- PBT ties uniform."], reading_note="One seed.")
    write_notes(tmp_path, notes)
    assert read_notes(tmp_path) == notes
    section = reading_section(tmp_path, tmp_path)
    assert section is not None and section.title == "What the numbers say"
    assert section.text == ["One seed."]
    assert section.items == ["Δ: +2.0% at s.", "PBT ties uniform."]


def test_corrupt_notes_are_one_line(tmp_path):
    (tmp_path / NOTES).write_text("{not json")
    with pytest.raises(ScalarizeError, match=r"notes.json is unreadable .*; delete it") as err:
        read_notes(tmp_path)
    assert "\n" not in str(err.value)
