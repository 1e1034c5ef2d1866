"""`python -m xbotlib` is the `xbot` command."""
import sys

from xbotlib.cli import main

sys.exit(main())
