"""Alembic revision scripts (a package so they ship and import like any module)."""
