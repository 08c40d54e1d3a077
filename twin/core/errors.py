"""Distinct failures a gate must tell apart: each leads to a different action at the barrier."""


class ParkingError(Exception):
    """Base class of every refusal the core can give."""


class LotFull(ParkingError):
    """No spot of any type is available: the FULL sign is on."""


class NoCompatibleSpot(ParkingError):
    """Spots are free, but none this vehicle may use (size, permit or EV rules)."""


class UnknownTicket(ParkingError):
    """The ticket was never issued by this lot."""


class DoubleExit(ParkingError):
    """The ticket was issued and has already been closed: a second exit on one ticket."""


class InvalidTransition(ParkingError):
    """A spot status change the lot refuses (e.g. an occupied spot put in maintenance)."""
