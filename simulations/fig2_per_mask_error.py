"""Figure 2 (right): an MDM's per-mask error against exact posteriors: ``lohard fig2``.

    python simulations/fig2_per_mask_error.py        # the CPU-scale Table 1 model (17, 83)

The logic lives in :mod:`lohard.experiments.fig2`; this script passes its arguments on.
"""

import sys

from lohard.cli import main

if __name__ == "__main__":
    sys.exit(main(["fig2", *sys.argv[1:]]))
