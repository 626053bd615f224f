"""Vehicles: list and search, detail with the latest state, time series, service records."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Path, Query, status

from can2care.durations import parse_duration
from cloud_ingest.storage import Vehicle as RegistryEntry
from cloud_ingest.storage import register_vehicles

from .. import models, queries
from ..deps import Admin, Agent, Conn, Supervisor, get_settings
from ..errors import InvalidRequest
from ..problems import problem_responses
from ..settings import Settings

router = APIRouter(prefix="/v1/vehicles", tags=["vehicles"])

VehicleId = Annotated[str, Path(min_length=1, max_length=200, examples=["veh-1"])]


@router.get(
    "",
    operation_id="listVehicles",
    response_model=models.VehiclePage,
    summary="List and search vehicles",
    responses=problem_responses(401, 422),
)
def list_vehicles(
    conn: Conn,
    _caller: Agent,
    q: Annotated[str | None, Query(max_length=200, description="start of id or VIN")] = None,
    vin: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[list[str], Query(max_length=20, description="has every tag given")] = [],  # noqa: B006
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> models.VehiclePage:
    rows, next_cursor = queries.list_vehicles(
        conn, q=q, vin=vin, model=model, region=region, tags=tag, cursor=cursor, limit=limit
    )
    return models.VehiclePage(vehicles=[models.Vehicle(**r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{vehicle_id}",
    operation_id="getVehicle",
    response_model=models.VehicleDetail,
    summary="A vehicle with its latest state, presence and last service",
    responses=problem_responses(401, 404, 422),
)
def get_vehicle(conn: Conn, _caller: Agent, vehicle_id: VehicleId) -> models.VehicleDetail:
    row = queries.get_vehicle(conn, vehicle_id)
    presence = queries.vehicle_status(conn, vehicle_id)
    services = queries.list_service_records(conn, vehicle_id, limit=1)
    return models.VehicleDetail(
        **row,
        status=None if presence is None else models.VehicleStatus(**presence),
        latest={
            path: models.SignalValue(**value)
            for path, value in queries.latest_state(conn, vehicle_id).items()
        },
        last_service=models.ServiceRecord(**services[0]) if services else None,
        open_alerts=queries.open_alert_count(conn, vehicle_id),
    )


@router.put(
    "/{vehicle_id}",
    operation_id="putVehicle",
    response_model=models.Vehicle,
    summary="Register or update a vehicle (admin)",
    responses=problem_responses(401, 403, 422),
)
def put_vehicle(
    conn: Conn, _caller: Admin, vehicle_id: VehicleId, body: models.VehicleIn
) -> models.Vehicle:
    entry = RegistryEntry(
        vehicle_id,
        **body.model_dump(exclude={"tags", "catalogues"}),
        tags=tuple(body.tags),
        catalogues=tuple(body.catalogues),
    )
    try:
        register_vehicles(conn, [entry])
    except (psycopg.errors.CheckViolation, psycopg.errors.UniqueViolation) as exc:
        raise InvalidRequest(str(exc).splitlines()[0], field="body") from None
    return models.Vehicle(**queries.get_vehicle(conn, vehicle_id))


@router.get(
    "/{vehicle_id}/series",
    operation_id="getVehicleSeries",
    response_model=models.Series,
    summary="Signals of a vehicle between two times, raw or in time buckets",
    responses=problem_responses(401, 404, 422),
)
def get_series(
    conn: Conn,
    _caller: Agent,
    settings: Annotated[Settings, Depends(get_settings)],
    vehicle_id: VehicleId,
    signal: Annotated[
        list[str], Query(min_length=1, description="VSS paths", examples=["Vehicle.Speed"])
    ],
    start: Annotated[models.Timestamp, Query(alias="from", description="inclusive")],
    end: Annotated[models.Timestamp, Query(alias="to", description="exclusive")],
    bucket: Annotated[
        str | None,
        Query(max_length=32, description="bucket width (`30s`, `5m`, `1h`); raw when absent"),
    ] = None,
) -> models.Series:
    if len(signal) > settings.series_max_signals:
        raise InvalidRequest(f"at most {settings.series_max_signals} signals", field="query.signal")
    if any(not s or len(s) > 300 for s in signal):
        raise InvalidRequest("a signal is a VSS path of 1..300 characters", field="query.signal")
    if end <= start:
        raise InvalidRequest("`to` must be after `from`", field="query.to")
    span = (end - start).total_seconds()
    queries.get_vehicle(conn, vehicle_id)
    if bucket is None:
        return _raw(conn, settings, vehicle_id, signal, start, end, span)
    width = parse_duration(bucket)
    if width is None or width < 0.001:
        raise InvalidRequest(
            f"{bucket!r} is not a duration such as 30s, 5m, 1h", field="query.bucket"
        )
    if span > settings.series_bucketed_max_s:
        raise InvalidRequest(
            f"at most {settings.series_bucketed_max_s:g} s between from and to", field="query.to"
        )
    if span / width > settings.series_max_points:
        raise InvalidRequest(
            f"{span / width:.0f} buckets; at most {settings.series_max_points}: widen the bucket",
            field="query.bucket",
        )
    out = [
        models.SignalSeries(
            path=path,
            buckets=[
                models.Bucket(**r)
                for r in queries.signal_buckets(
                    conn, vehicle_id, path, start, end, timedelta(seconds=width)
                )
            ],
        )
        for path in dict.fromkeys(signal)
    ]
    return models.Series(vehicle_id=vehicle_id, start=start, end=end, bucket_s=width, signals=out)


def _raw(
    conn: Any,
    settings: Settings,
    vehicle_id: str,
    signal: list[str],
    start: Any,
    end: Any,
    span: float,
) -> models.Series:
    if span > settings.series_raw_max_s:
        raise InvalidRequest(
            f"at most {settings.series_raw_max_s:g} s of raw samples; give a bucket",
            field="query.to",
        )
    out = []
    for path in dict.fromkeys(signal):
        rows = queries.signal_samples(
            conn, vehicle_id, path, start, end, settings.series_max_points
        )
        if len(rows) > settings.series_max_points:
            raise InvalidRequest(
                f"{path}: more than {settings.series_max_points} samples; narrow the range "
                "or give a bucket",
                field="query.bucket",
            )
        out.append(models.SignalSeries(path=path, samples=[models.Sample(**r) for r in rows]))
    return models.Series(vehicle_id=vehicle_id, start=start, end=end, bucket_s=None, signals=out)


@router.get(
    "/{vehicle_id}/service-records",
    operation_id="listServiceRecords",
    response_model=list[models.ServiceRecord],
    tags=["service"],
    summary="Services done on a vehicle, newest first",
    responses=problem_responses(401, 404, 422),
)
def list_service_records(
    conn: Conn, _caller: Agent, vehicle_id: VehicleId
) -> list[models.ServiceRecord]:
    return [models.ServiceRecord(**r) for r in queries.list_service_records(conn, vehicle_id)]


@router.post(
    "/{vehicle_id}/service-records",
    operation_id="recordService",
    response_model=models.ServiceRecord,
    status_code=status.HTTP_201_CREATED,
    tags=["service"],
    summary="Record a service done (resets the vehicle's service reminder)",
    responses=problem_responses(401, 403, 404, 422),
)
def record_service(
    conn: Conn, caller: Supervisor, vehicle_id: VehicleId, body: models.ServiceRecordIn
) -> models.ServiceRecord:
    row = queries.record_service(
        conn, vehicle_id, body.time, body.odometer_km, body.note, actor=caller.name
    )
    return models.ServiceRecord(**row)
