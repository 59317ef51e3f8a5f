"""Cost per call: Realtime usage priced from a dated table, and the cascades it is compared with."""

from hybrid_agent.cost.estimate import CallCost, CascadeCost, SpokenTurn, call_costs, cascade_cost, realtime_cost, summarize, worked_example
from hybrid_agent.cost.prices import DEFAULT_PRICES, CascadeOption, PriceFileError, PriceTable, RealtimePrice, load_prices

__all__ = [
    "CallCost", "CascadeCost", "CascadeOption", "DEFAULT_PRICES", "PriceFileError", "PriceTable", "RealtimePrice",
    "SpokenTurn", "call_costs", "cascade_cost", "load_prices", "realtime_cost", "summarize", "worked_example",
]
