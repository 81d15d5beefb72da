"""lohard: planted CSP hardness, belief propagation, cavity thresholds and MDM token ordering.

Subpackages
-----------
predicates  truth-table predicates, transfer matrices, Kesten-Stigum threshold
csp         planted and null random CSP ensembles
bp          belief propagation on instances, overlaps, linearised BP
cavity      cavity-method thresholds
lo          latent-and-observed (L&O) data, masking, exact and BP posteriors
sudoku      Sudoku as a planted CSP: generator, strategy rater, encodings, BP decoding
mdm         masked diffusion models and pi-learners (needs the ``torch`` extra)
"""

from lohard._util import DataError, package_version

__version__ = package_version()

from lohard.bp import BPResult, overlap, run_bp
from lohard.csp import Instance, null_instance, planted_instance
from lohard.predicates import Predicate

__all__ = [
    "__version__",
    "DataError",
    "Predicate",
    "Instance",
    "planted_instance",
    "null_instance",
    "run_bp",
    "BPResult",
    "overlap",
]
