"""Vehicle CAN traffic: scripted scenarios, log replay and simulated fleets."""

__all__: list[str] = []
