"""`xbot bench speed` as a script: python bench/bench_speed.py [options]. See xbotlib/bench.py."""
import sys

from xbotlib.devtools.bench import main

if __name__ == "__main__":
    sys.exit(main("speed", sys.argv[1:]))
