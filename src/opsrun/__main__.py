from opsrun.cli import main

main()
