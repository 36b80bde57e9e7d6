"""`python -m opsrun.engine`: the pyinfra worker process the engine starts for each run (see worker.main)."""

from opsrun.engine.worker import main

main()
