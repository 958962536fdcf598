"""An offline simulator of the Claude Messages API that the real `anthropic` SDK cannot tell from the real thing.

with Simulator(speed=0) as sim:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="offline")
"""

from .app import SimulatorApp
from .faults import KINDS as FAULTS
from .faults import Fault
from .running import Simulator, shared_simulator

__all__ = ["FAULTS", "Fault", "Simulator", "SimulatorApp", "shared_simulator"]
