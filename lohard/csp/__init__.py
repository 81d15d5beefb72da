"""Planted and null random CSP ensembles (Def. B.9) as flat CSR instances."""

from lohard.csp._instance import Instance, null_instance, planted_instance

__all__ = ["Instance", "planted_instance", "null_instance"]
