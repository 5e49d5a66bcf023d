"""Run the CLI as `python -m digitlab`."""

from digitlab.cli.main import main

main()
