"""can2care: connected-vehicle telematics and proactive care.

This package holds what every part shares: the version, the command-line entry point and
the private development services (Mosquitto, PostgreSQL with TimescaleDB).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
