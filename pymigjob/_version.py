"""pymigjob's version: the one place it is written.  pyproject.toml reads it
(``[tool.setuptools.dynamic]``, parsed without importing the package), so
the installed metadata, ``pymigjob.__version__`` and ``python -m pymigjob
--version`` cannot disagree."""

__version__ = "0.1.0"
