import sys

from crs.cli import main

sys.exit(main())
