"""`xbot bench growth` as a script: python bench/bench_growth.py [options]. See xbotlib/bench.py."""
import sys

from xbotlib.devtools.bench import main

if __name__ == "__main__":
    sys.exit(main("growth", sys.argv[1:]))
