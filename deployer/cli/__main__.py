"""``python -m deployer.cli``: the same as the ``deployer`` entry point."""

import sys

from deployer.cli import main

sys.exit(main())
