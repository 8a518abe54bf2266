"""A study's own numbers for its report: what the script that ran it knows and its folders do
not (each objective's chance level and test-set size, which need the data; its plain reading
of the results, which it prints). The demo writes them to ``notes.json`` in its folder
(:data:`~scalarize.runs.layout.NOTES`) before it builds the report, so that the report shows
what the demo prints; a folder without notes gets a report without those parts.

Example:
    >>> notes = Notes(chance={"flat": 0.25}, reading=["- Δ: +2.0% at s."])
    >>> Notes.model_validate_json(notes.to_json()) == notes
    True
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from scalarize.errors import ScalarizeError
from scalarize.files import atomic_write_text
from scalarize.report.page import Section
from scalarize.runs.layout import NOTES
from scalarize.runs.records import Record


class Notes(Record):
    """``notes.json``: per objective, the test accuracy of always answering the most frequent
    training class (``chance``) and the number of test examples (``test_sizes``); a reading
    of the numbers (``reading``, one line each) under ``reading_title``, with ``reading_note``
    saying what its claims rest on."""

    chance: dict[str, float] = Field(default_factory=dict)
    test_sizes: dict[str, int] = Field(default_factory=dict)
    reading_title: str = "What the numbers say"
    reading_note: str = ""
    reading: list[str] = Field(default_factory=list)


def write_notes(folder: Path | str, notes: Notes) -> Path:
    """Write ``notes`` into ``folder`` (atomically); returns the file's path."""
    path = Path(folder) / NOTES
    atomic_write_text(path, notes.to_json(indent=1) + "\n")
    return path


def read_notes(folder: Path | str) -> Notes | None:
    """The notes in ``folder``, ``None`` when it has none; a corrupt file is one
    :class:`~scalarize.errors.ScalarizeError` line."""
    path = Path(folder) / NOTES
    if not path.is_file():
        return None
    try:
        return Notes.model_validate_json(path.read_bytes())
    except (ValidationError, OSError) as exc:
        first = str(exc).splitlines()[0]
        raise ScalarizeError(f"{path} is unreadable ({first}); delete it or run the study "
                             "again to rewrite it") from None


def reading_section(folder: Path, figures: Path) -> Section | None:
    """The study's reading of its numbers, as it printed it; ``None`` without one."""
    notes = read_notes(folder)
    if notes is None or not notes.reading:
        return None
    text = [notes.reading_note] if notes.reading_note else []
    return Section(notes.reading_title, text,
                   items=[line.removeprefix("- ") for line in notes.reading])


__all__ = ["Notes", "read_notes", "reading_section", "write_notes"]
