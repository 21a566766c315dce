"""Halext Desktop: a desktop AI chat client for halext-org and local Ollama models.

The import package is ``halext_desktop``; its subpackages are the folders beside this one at
the top of the repository (``app``, ``ui``, ``storage``, ``routing``, ``resources``), mapped
into it by ``package-dir`` in pyproject.toml, so the wheel installs one top-level name and
never clashes with other distributions' generic ``app`` or ``ui`` packages.

The symlinks in this folder give a checkout the same layout the wheel has, for tools that do
not run import hooks (mypy, import-linter) and for ``python -m halext_desktop`` from the
repository root.

Layers (checked by ``make lint``): app → ui → storage → routing; each imports only those
to its right.
"""

__version__ = "0.1.0"
