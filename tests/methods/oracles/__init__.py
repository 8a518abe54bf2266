"""Oracle tests: every registered method against a small independent reference of its published
update, written here from the paper's equations (never calling scalarize's or torchjd's code).

Each module names the methods it covers in a module-level ``COVERED`` set;
``test_registry.py`` fails when a registered method is in none of them, so a new method must
bring its oracle. Shared problems (fixed Jacobians, a tiny model) are in ``_problems.py``.
"""
