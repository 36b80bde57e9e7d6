"""`python -m opsrun.docgen`: write the generated pages of the docs site (see opsrun.docgen)."""

import sys

from opsrun.docgen import main

sys.exit(main())
