"""A simulated GitHub for development and tests (docs/github-simulator.md). Imported by nothing but
its management command and the tests."""

from github_simulator.simulator import Simulator

__all__ = ["Simulator"]
