"""A simulated GitHub for development and tests (SPEC §7). Imported by nothing but its management
command and the tests."""

from integrations.github.simulator.simulator import Simulator

__all__ = ["Simulator"]
