"""Alembic migrations of the local database (run by storage.db.Database.open)."""
