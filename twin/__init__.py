"""ParkTwin: a discrete-event simulator and digital twin of multi-level parking lots."""

__version__ = "0.1.0"
