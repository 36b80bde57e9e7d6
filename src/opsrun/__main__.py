"""`python -m opsrun`: the command line (opsrun.entry, then opsrun.cli)."""

from opsrun.entry import main

main()
