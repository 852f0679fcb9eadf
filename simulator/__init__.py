"""A local stand-in for Twilio's voice REST API and its signed status callbacks.

Imports nothing from `worker` or `webhook`: it plays Twilio, not us.
"""

from simulator.core import Simulator
from simulator.records import CallbackRecord, CreateRecord, Faults
from simulator.scenario import Outcome, Scenario
from simulator.signing import signature

__all__ = ["CallbackRecord", "CreateRecord", "Faults", "Outcome", "Scenario", "Simulator",
           "signature"]
