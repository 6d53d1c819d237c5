"""Command-line pieces of `python -m pymigjob`."""
