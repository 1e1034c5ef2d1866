"""`python -m xbotlib` is the `xbot` command."""
import sys

from xbotlib.app.cli.main import main

sys.exit(main())
