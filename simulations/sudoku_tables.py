"""Tables 2 and 5 (Sudoku: MDM decoders against ARMs): ``lohard sudoku tables``.

    python simulations/sudoku_tables.py                      # 9x9, CPU scale
    python simulations/sudoku_tables.py --box 2              # 4x4, CPU scale
    python simulations/sudoku_tables.py --scale gpu          # the paper-scale 9x9 run

The logic lives in :mod:`lohard.experiments.sudoku_tables`; this script passes its
arguments on.
"""

import sys

from lohard.cli import main

if __name__ == "__main__":
    sys.exit(main(["sudoku", "tables", *sys.argv[1:]]))
