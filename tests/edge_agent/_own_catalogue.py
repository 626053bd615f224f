"""A user's own catalogue, as docs/signal-map.md has one written: a small ABS DBC (after
cantools' abs.dbc) and a map of three of its signals, none of them the demo vehicle's crash
signals."""

from __future__ import annotations

from pathlib import Path

DBC = """\
VERSION ""

NS_ :

BS_:

BU_: ABS DRS_MM5_10

BO_ 835 BREMSE_33: 8 ABS
 SG_ whlspeed_FL : 0|16@1+ (0.015625,0) [0|100] "m/s" Vector__XXX
 SG_ whlspeed_FR : 16|16@1+ (0.015625,0) [0|100] "m/s" Vector__XXX

BO_ 112 MM5_10_TX1: 8 DRS_MM5_10
 SG_ Yaw_Rate : 0|16@1+ (0.005,-163.84) [-163.84|163.83] "deg/s" ABS
 SG_ AY1 : 32|16@1+ (0.000127465,-4.1768) [-4.1768|4.1765] "g" ABS
"""

MAP = """\
version = 1
dbc = "abs.dbc"

[signals."Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed"]
message = "BREMSE_33"
signal = "whlspeed_FL"
unit = "km/h"
scale = 3.6

[signals."Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed"]
message = "BREMSE_33"
signal = "whlspeed_FR"
unit = "km/h"
scale = 3.6

[signals."Vehicle.Acceleration.Lateral"]
message = "MM5_10_TX1"
signal = "AY1"
unit = "m/s^2"
scale = 9.80665
"""

PATHS = (
    "Vehicle.Acceleration.Lateral",
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed",
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed",
)


def write_own_catalogue(directory: Path) -> Path:
    """Write ``abs.dbc`` and ``abs.map.toml`` into ``directory``; the map's path."""
    (directory / "abs.dbc").write_text(DBC, encoding="utf-8")
    path = directory / "abs.map.toml"
    path.write_text(MAP, encoding="utf-8")
    return path
