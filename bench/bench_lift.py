"""`xbot bench lift` as a script: python bench/bench_lift.py [options]. See xbotlib/bench.py."""
import sys

from xbotlib.devtools.bench import main

if __name__ == "__main__":
    sys.exit(main("lift", sys.argv[1:]))
