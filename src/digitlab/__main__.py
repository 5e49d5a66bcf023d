"""Run the CLI as `python -m digitlab`."""

from digitlab.cli import main

main()
