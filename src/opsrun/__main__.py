"""`python -m opsrun`: the command line (opsrun.cli)."""

from opsrun.cli import main

main()
