"""Embedded, scripted OpenAI Realtime (GA) server for the demo, tests and benchmarks."""

from hybrid_agent.simulator.scenario import (
    Scenario,
    ScenarioError,
    default_scenario,
    load_scenario,
    parse_scenario,
    shipped_scenarios,
)
from hybrid_agent.simulator.server import RealtimeSimulator, SimulatorValidationError, serve_simulator
from hybrid_agent.simulator.synth import silence, speech

__all__ = [
    "RealtimeSimulator",
    "Scenario",
    "ScenarioError",
    "SimulatorValidationError",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
    "serve_simulator",
    "shipped_scenarios",
    "silence",
    "speech",
]
