"""peerkeeper.sim: whole networks of peerkeeper's real sans-IO cores in simulated time.

:class:`~peerkeeper.sim.network.Simulation` builds and runs the network; scenarios are
plain functions over it.
"""

from peerkeeper.sim.network import (
    AsBlock,
    Churn,
    SimConfig,
    SimError,
    SimNode,
    Simulation,
    virtual_address,
)

__all__ = ["AsBlock", "Churn", "SimConfig", "SimError", "SimNode", "Simulation", "virtual_address"]
