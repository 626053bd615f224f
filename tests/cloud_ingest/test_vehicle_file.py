"""The vehicle CSV file, and `can2care vehicles import` against the database and a broker."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from can2care.cli import main
from can2care.devservices._proc import free_port
from cloud_ingest.provisioning import read_credentials, update_broker_files
from cloud_ingest.storage import Vehicle
from cloud_ingest.vehicle_file import VehicleFileError, read_vehicle_file, write_vehicle_file
from tests.fixtures.fix_dirs import make_service_dir
from tests.fixtures.fix_mqtt import configured_broker

HEADER = "vehicle_id,vin,model,propulsion,delivery_date,owner_ref,region,tags,catalogues\n"
CATALOGUE = "5b549d043b34ed61"


def _file(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "fleet.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_a_full_line_and_a_minimal_line(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "veh-1,WVWZZZ1JZXW000001,Aurora EV,BEV,2026-03-01,owner-17,north,fleet; lease,"
        f"{CATALOGUE}\n"
        "veh-2,,,,,,,,\n\n",
    )
    first, second = read_vehicle_file(path)
    assert first == Vehicle(
        "veh-1", "WVWZZZ1JZXW000001", "Aurora EV", "BEV", date(2026, 3, 1), "owner-17",
        "north", ("fleet", "lease"), (CATALOGUE,),
    )  # fmt: skip
    assert second == Vehicle("veh-2")


def test_a_header_with_fewer_columns(tmp_path: Path) -> None:
    path = _file(tmp_path, "veh-1,south\n", header="vehicle_id,region\n")
    assert read_vehicle_file(path) == [Vehicle("veh-1", region="south")]


def test_every_problem_is_reported_with_its_line_and_column(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "veh 1,,,,,,,,\n"  # 2: not a topic level
        "veh-2,WVWZZZ1JZXW00000I,,,,,,,\n"  # 3: I is not in a VIN
        "veh-3,,,,2026-13-01,,,,\n"  # 4: no 13th month
        "veh-4,,,,,,,,abc\n"  # 5: not a catalogue id
        "veh-5,,\n"  # 6: too few cells
        "veh-6,,,,,,,,\n"
        "veh-6,,,,,,,,\n",  # 8: repeated
    )
    with pytest.raises(VehicleFileError) as caught:
        read_vehicle_file(path)
    problems = caught.value.problems
    assert [p.split(": ")[0] for p in problems] == [f"{path}:{n}" for n in (2, 3, 4, 5, 6, 8)]
    assert "vehicle_id" in problems[0] and "'veh 1'" in problems[0]
    assert "vin" in problems[1] and "delivery_date" in problems[2]
    assert "catalogues" in problems[3] and "3 cells" in problems[4]
    assert "already on line 7" in problems[5]


def test_a_bad_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VehicleFileError, match=r":1: unknown column\(s\) 'colour'"):
        read_vehicle_file(_file(tmp_path, "", header="vehicle_id,colour\n"))
    with pytest.raises(VehicleFileError, match="no vehicle_id column"):
        read_vehicle_file(_file(tmp_path, "", header="vin\n"))
    with pytest.raises(VehicleFileError, match="empty"):
        read_vehicle_file(_file(tmp_path, "", header=""))


def test_written_files_read_back(tmp_path: Path) -> None:
    vehicles = [
        Vehicle("veh-1", "WVWZZZ1JZXW000001", "A, B", None, date(2026, 1, 2), None, "n",
                ("x", "y"), (CATALOGUE,)),
        Vehicle("veh-2"),
    ]  # fmt: skip
    write_vehicle_file(tmp_path / "out.csv", vehicles)
    assert read_vehicle_file(tmp_path / "out.csv") == vehicles


def test_update_keeps_known_logins_and_makes_new_ones(tmp_path: Path) -> None:
    fresh, ingest = update_broker_files(tmp_path, ["veh-1", "veh-2"])
    assert [c.vehicle_id for c in fresh] == ["veh-1", "veh-2"] and ingest is not None
    before = (tmp_path / "passwords").read_text().splitlines()
    fresh, ingest = update_broker_files(tmp_path, ["veh-2", "veh-3"])
    assert [c.vehicle_id for c in fresh] == ["veh-3"] and ingest is None
    after = (tmp_path / "passwords").read_text().splitlines()
    assert after[0] == before[0] and after[1] == before[2]  # ingest and veh-2 kept
    assert not any(line.startswith("veh-1:") for line in after)  # veh-1 removed
    assert "user veh-1" not in (tmp_path / "acl").read_text()


def _connects(port: int, user: str, password: str) -> int:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    codes: list[int] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason.value)
    client.connect("127.0.0.1", port)
    while not codes:
        client.loop(0.1)
    client.disconnect()
    return codes[0]


def test_import_registers_and_provisions_logins_a_real_broker_accepts(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_service_dir("can2care-vehicles-")
    try:
        broker_dir = root / "broker"
        first = _file(tmp_path, "veh-1,,,BEV,,,north,,\nveh-2,,,ICE,,,south,,\n")
        assert main(["vehicles", "import", str(first), "--database", db_url,
                     "--broker-dir", str(broker_dir)]) == 0  # fmt: skip
        creds = {
            c.vehicle_id: c.password for c in read_credentials(broker_dir / "new-credentials.json")
        }
        assert sorted(creds) == ["veh-1", "veh-2"]
        (tmp_path / "more.csv").write_text(HEADER + "veh-3,,,,,,north,,\n")
        assert main(["vehicles", "import", str(tmp_path / "more.csv"), "--database", db_url,
                     "--broker-dir", str(broker_dir),
                     "--credentials-out", str(tmp_path / "veh3.json")]) == 0  # fmt: skip
        creds.update((c.vehicle_id, c.password) for c in read_credentials(tmp_path / "veh3.json"))
        assert sorted(creds) == ["veh-1", "veh-2", "veh-3"]
        port = free_port()
        settings = ["allow_anonymous false", f"password_file {broker_dir / 'passwords'}",
                    f"acl_file {broker_dir / 'acl'}"]  # fmt: skip
        with configured_broker(root, port, settings):
            for vehicle, password in creds.items():  # the first import's logins still work
                assert _connects(port, vehicle, password) == 0
            ingest = (broker_dir / "ingest.password").read_text().strip()
            assert _connects(port, "can2care-ingest", ingest) == 0
            assert _connects(port, "veh-1", "wrong") == 135  # Mosquitto 2.0: not authorised
        with psycopg.connect(db_url) as conn:
            rows = conn.execute("SELECT vehicle_id, region FROM vehicle ORDER BY 1").fetchall()
        assert rows == [("veh-1", "north"), ("veh-2", "south"), ("veh-3", "north")]
        assert main(["vehicles", "list", "--database", db_url, "--region", "north"]) == 0
        out = capsys.readouterr().out
        assert "veh-3" in out and "veh-2 " not in out and "2 vehicles" in out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_import_of_a_bad_file_imports_nothing(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _file(tmp_path, "veh-1,,,,,,,,\nveh 2,,,,,,,,\n")
    assert main(["vehicles", "import", str(bad), "--database", db_url]) == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err and f"{bad}:3: vehicle_id" in err
    with psycopg.connect(db_url) as conn:
        tables = conn.execute("SELECT to_regclass('vehicle')").fetchone()
    assert tables == (None,)  # not even migrated: nothing was touched
