"""What every command-line module shares: the consoles and the one-line error with its exit code."""

from __future__ import annotations

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def failure(message: str, code: int = 2) -> typer.Exit:
    """Print ``fel: message`` on stderr and give the Exit to raise (2: bad input)."""
    err.print(f"[bold red]fel:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
