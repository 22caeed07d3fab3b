import sys

from ..tools.cli import main

sys.exit(main(["study", *sys.argv[1:]]))
