"""Qt-free persistence: settings, secrets, the SQLite database and its migrations."""
