"""The simulated exchange: ordex's embedded default venue and the test counterparty.

``SimulatedExchange`` is the synchronous matching engine (books, synthetic liquidity, fees, halts,
faults); ``InProcessVenue`` adapts it to the async Venue protocol.
"""

from ordex.venues.simulated.book import OrderBook, Resting
from ordex.venues.simulated.exchange import MAKER, TAKER, FeeSchedule, SimulatedExchange
from ordex.venues.simulated.faults import Faults
from ordex.venues.simulated.inprocess import InProcessVenue
from ordex.venues.simulated.market import MarketConfig

__all__ = [
    "MAKER",
    "TAKER",
    "Faults",
    "FeeSchedule",
    "InProcessVenue",
    "MarketConfig",
    "OrderBook",
    "Resting",
    "SimulatedExchange",
]
