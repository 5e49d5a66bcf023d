"""The `digitlab` command line (Typer): thin commands over the packages below it."""
