"""peerkeeper.sim: whole networks of peerkeeper's real sans-IO cores in simulated time.

:class:`~peerkeeper.sim.network.Simulation` builds and runs a network of Bitcoin nodes,
:class:`~peerkeeper.sim.native.NativeSimulation` one of native-protocol nodes (both on
:class:`~peerkeeper.sim.engine.Network`'s event loop); scenarios are plain functions
over them.
"""

from peerkeeper.sim.native import NativeSimConfig, NativeSimulation
from peerkeeper.sim.network import (
    AsBlock,
    Churn,
    SimConfig,
    SimError,
    SimNode,
    Simulation,
    virtual_address,
)

__all__ = [
    "AsBlock",
    "Churn",
    "NativeSimConfig",
    "NativeSimulation",
    "SimConfig",
    "SimError",
    "SimNode",
    "Simulation",
    "virtual_address",
]
