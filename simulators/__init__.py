"""Simulated users for evaluation. Registered in `crs.registry.SIMULATORS`."""

from simulators.rule_based import RuleBasedUser, SimulatorOptions

__all__ = ["RuleBasedUser", "SimulatorOptions"]
