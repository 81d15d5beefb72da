"""Table 1 (vanilla vs adaptive MDM decoding on L&O-NAE-SAT): ``lohard table1``.

    python simulations/table1_nae.py                 # CPU scale, figures/table1_cpu.*
    python simulations/table1_nae.py --scale gpu     # the paper's presets and 19M model

The logic lives in :mod:`lohard.experiments.table1`; this script passes its arguments on.
"""

import sys

from lohard.cli import main

if __name__ == "__main__":
    sys.exit(main(["table1", *sys.argv[1:]]))
