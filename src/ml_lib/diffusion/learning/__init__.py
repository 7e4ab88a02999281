"""The history of generations and feedback, and what is learned from it (pure Python + sqlite3, no torch).

``records`` (generation, feedback and context records), ``database`` (the history file: migrations, WAL,
backups), ``store`` (reads and writes), ``collector`` (a generation → its record, the user's overrides),
``learner`` (per-context preferences from ratings and edits), ``service`` (``History``: the one face the
facade and the CLI use).
"""
