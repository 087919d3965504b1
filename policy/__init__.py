"""Dialogue policies. Each is registered by name in `crs.registry.POLICIES`; every one must pass
`policy.conformance.check_policy`."""

from policy.base import Policy, PolicyBase

__all__ = ["Policy", "PolicyBase"]
