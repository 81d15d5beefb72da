"""Figure 4: BP overlap from the ground truth vs a random start, against degree.

Thin wrapper over ``lohard fig4`` (same options), e.g.

    python simulations/fig4_overlap.py --predicate not-equal --m 5
"""

import sys

from lohard.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["fig4", *sys.argv[1:]]))
