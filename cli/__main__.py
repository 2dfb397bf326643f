import sys

from adq.cli import main

sys.exit(main())
