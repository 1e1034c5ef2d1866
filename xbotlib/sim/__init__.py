"""The sandbox X: a simulated audience (``audience``) defined by a scenario file (``scenario``),
served with X API v2's routes and JSON (``xserver.SandboxX``; its handlers in ``xroutes``, its protocol in
``xprotocol``), the account's world over time in ``world``, in-process through
``transport.SyncASGITransport`` or over a socket with ``xbot sandbox``.

``oracle`` reads the ground truth; only benchmarks and the demo summary may use it.
"""
from __future__ import annotations

from xbotlib.sim.scenario import Scenario, ScenarioError, load_scenario
from xbotlib.sim.transport import SyncASGITransport
from xbotlib.sim.world import AudienceModel
from xbotlib.sim.xprotocol import FaultPlan
from xbotlib.sim.xserver import SandboxX

__all__ = ["AudienceModel", "FaultPlan", "SandboxX", "Scenario", "ScenarioError", "SyncASGITransport", "load_scenario"]
