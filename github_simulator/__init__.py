"""A simulated GitHub for development and tests (SPEC §7). Imported by nothing but its management
command and the tests."""

from github_simulator.simulator import Simulator

__all__ = ["Simulator"]
