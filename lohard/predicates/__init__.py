"""Truth-table predicates g: {0..m-1}^k -> {0,1}, transfer matrices, Kesten-Stigum threshold."""

from lohard.predicates._predicate import (
    KERNEL_GENERIC,
    KERNEL_NAE,
    KERNEL_XOR,
    PREDICATE_NAMES,
    Predicate,
    predicate_by_name,
)

__all__ = [
    "Predicate",
    "predicate_by_name",
    "PREDICATE_NAMES",
    "KERNEL_GENERIC",
    "KERNEL_NAE",
    "KERNEL_XOR",
]
