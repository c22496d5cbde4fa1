import sys

from nnfast.cli import main

sys.exit(main())
