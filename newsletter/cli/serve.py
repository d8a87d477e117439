"""Commands of `newsletter` (being written: see the open issues)."""

import click


def register(main: click.Group) -> None:
    """Add this module's commands to MAIN."""
