"""Vehicles' MQTT broker logins (admin): rotate (the password is shown once), look up, remove.

A broker login is the vehicle's Mosquitto user (its vehicle id) and password, kept in the
password file and ACL in ``Settings.broker_dir`` (`cloud_ingest.provisioning`, which locks the
directory so that several worker processes never lose each other's change). It is never an API
credential: the password is only in Mosquitto's file, as its PBKDF2 hash. After a change the
broker is sent SIGHUP (its pid read from ``Settings.broker_pid_file``) to load the files; when
it cannot be, the change stands and the answer says so (``broker_reloaded: false``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from cloud_ingest import provisioning

from .. import models, queries
from ..deps import Admin, Conn, get_settings
from ..errors import Conflict, InvalidRequest, NotFound
from ..problems import problem_responses
from ..settings import Settings
from .vehicles import VehicleId

router = APIRouter(prefix="/v1/vehicles", tags=["broker-logins"])

log = logging.getLogger(__name__)

ApiSettings = Annotated[Settings, Depends(get_settings)]

_NO_STORE = {
    "Cache-Control": {
        "description": "`no-store`: the answer holds a password",
        "required": True,
        "schema": {"type": "string", "enum": ["no-store"]},
    }
}


def _broker_dir(settings: Settings) -> Path:
    if settings.broker_dir is None:
        raise Conflict(
            "this API does not manage broker logins: set CAN2CARE_BROKER_DIR to the directory "
            "of Mosquitto's password file and ACL"
        )
    return settings.broker_dir


def _login_name(vehicle_id: str) -> str:
    """The vehicle id, if it can be a broker user name of a vehicle."""
    try:
        provisioning.validate_vehicle_id(vehicle_id)
    except ValueError as exc:
        raise InvalidRequest(str(exc), field="path.vehicle_id") from None
    if vehicle_id == provisioning.DEFAULT_INGEST_USER:
        raise Conflict(f"{vehicle_id!r} is the ingest service's broker user, not a vehicle's")
    return vehicle_id


def _reload(settings: Settings) -> bool:
    if settings.broker_pid_file is None:
        log.info("no broker_pid_file set: the broker loads the change when it is reloaded")
        return False
    return provisioning.reload_broker(settings.broker_pid_file)


@router.post(
    "/{vehicle_id}/broker-login",
    operation_id="rotateBrokerLogin",
    response_model=models.BrokerLoginCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Give a vehicle a new broker password (shown only in this answer)",
    description="Replaces the vehicle's MQTT password, or gives it a login if it has none; "
    "the old password stops working when the broker reloads (SIGHUP, sent when "
    "`CAN2CARE_BROKER_PID_FILE` is set). 409 when `CAN2CARE_BROKER_DIR` is not set.",
    responses={
        201: {"description": "The new login", "headers": _NO_STORE},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
def rotate_broker_login(
    conn: Conn, caller: Admin, settings: ApiSettings, vehicle_id: VehicleId, response: Response
) -> models.BrokerLoginCreated:
    directory = _broker_dir(settings)
    queries.get_vehicle(conn, _login_name(vehicle_id))
    credential = provisioning.rotate_vehicle_login(
        directory, vehicle_id, prefix=settings.broker_topic_prefix
    )
    log.info("broker login of vehicle %s rotated by token %r", vehicle_id, caller.name)
    response.headers["Cache-Control"] = "no-store"
    return models.BrokerLoginCreated(
        vehicle_id=vehicle_id,
        username=credential.vehicle_id,
        password=credential.password,
        broker_reloaded=_reload(settings),
    )


@router.get(
    "/{vehicle_id}/broker-login",
    operation_id="getBrokerLogin",
    response_model=models.BrokerLogin,
    summary="Whether a vehicle has a broker login (never its password)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def get_broker_login(
    conn: Conn, _caller: Admin, settings: ApiSettings, vehicle_id: VehicleId
) -> models.BrokerLogin:
    directory = _broker_dir(settings)
    queries.get_vehicle(conn, _login_name(vehicle_id))
    logins = provisioning.read_password_file(directory / "passwords")
    return models.BrokerLogin(vehicle_id=vehicle_id, has_login=vehicle_id in logins)


@router.delete(
    "/{vehicle_id}/broker-login",
    operation_id="deleteBrokerLogin",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a vehicle's broker login (also of a vehicle no longer registered)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def delete_broker_login(caller: Admin, settings: ApiSettings, vehicle_id: VehicleId) -> Response:
    directory = _broker_dir(settings)
    name = _login_name(vehicle_id)
    if not provisioning.remove_vehicle_login(directory, name, prefix=settings.broker_topic_prefix):
        raise NotFound(f"vehicle {vehicle_id!r} has no broker login")
    log.info("broker login of vehicle %s removed by token %r", vehicle_id, caller.name)
    _reload(settings)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
