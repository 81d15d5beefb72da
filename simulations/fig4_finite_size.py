"""Figure 4 at N = 10^3, 10^4, 10^5, 10^6: BP overlap from the ground truth and from a
random start against degree, one colour per N, in figures/fig4_finite_size.{png,csv,json}.

Thin wrapper over ``lohard fig4 --n 1000,10000,100000,1000000`` (same options; a later
``--n`` replaces the sizes). About 40 minutes on 2 cores (38 minutes for all 189 cells
from an empty cache, 2026-12-05; docs/fig4.md); resumable: rerun the same command to
continue.
In the background, e.g.

    nohup nice -n 19 python simulations/fig4_finite_size.py > runs/fig4_finite_size.log 2>&1 &
"""

import sys

from lohard.cli import main

SIZES = "1000,10000,100000,1000000"

if __name__ == "__main__":
    raise SystemExit(main(["fig4", "--n", SIZES, *sys.argv[1:]]))
