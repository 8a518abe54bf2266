"""The one error type a user can cause.

Every mistake a user can make (a bad config, a missing or corrupt file, an unknown name, a wrong
number of weights) raises :class:`ScalarizeError` with a message that says what is wrong and how to
fix it. The command line prints that message on one line and exits with status 2.
"""

from __future__ import annotations


class ScalarizeError(Exception):
    """A problem with the user's input, with a message that says how to fix it."""


class SkippedRunWarning(UserWarning):
    """A run left out of a table, an analysis or a report because one of its files is corrupt
    or unreadable; the message names the run folder and the reason."""


class SelectionFallbackWarning(UserWarning):
    """A "best" chosen on the test split because the runs have no validation scores (written
    before selection on validation); the message names the fallback and how to avoid it."""
