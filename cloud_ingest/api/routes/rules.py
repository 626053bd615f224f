"""Rules: list the running set, validate a rule file, store rule files, ask workers to reload.

The rules workers read the built-in catalogue, their own files and then the files stored here
(`rule_file`, sources ``api:<name>``); a reload request bumps `rule_generation` and sends
``NOTIFY can2care_rules`` (docs/api.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from rules.errors import RuleFileError
from rules.loader import load_rules
from rules.model import Rule, RuleSet

from .. import models, queries
from ..deps import Agent, Conn, Supervisor
from ..problems import problem_responses

router = APIRouter(prefix="/v1/rules", tags=["rules"])

FileName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", examples=["fleet-care"])]


def source(name: str) -> str:
    """The source name of a stored rule file in problems and `Rule.source`."""
    return f"api:{name}"


def _info(rule: Rule) -> models.RuleInfo:
    trigger = f"event {rule.event}" if rule.event else " ".join((rule.when or "").split())
    return models.RuleInfo(
        id=rule.id,
        title=rule.title,
        category=rule.category,
        severity=rule.severity,
        trigger=trigger,
        source=rule.source,
    )


def _combined(conn: Conn, replace: tuple[str, str | None] | None = None) -> RuleSet:
    """The built-in catalogue and the stored files (one replaced, added or dropped)."""
    texts = {row["name"]: row["text"] for row in queries.list_rule_files(conn)}
    if replace is not None:
        name, text = replace
        if text is None:
            texts.pop(name, None)
        else:
            texts[name] = text
    return load_rules([], builtin=True, texts=[(source(n), t) for n, t in sorted(texts.items())])


@router.get(
    "",
    operation_id="listRules",
    response_model=models.RuleList,
    summary="The rules: the built-in catalogue and the stored files",
    responses=problem_responses(401),
)
def list_rules(conn: Conn, _caller: Agent) -> models.RuleList:
    generation = queries.rule_generation(conn)
    try:
        rules = _combined(conn)
        problems: list[str] = []
    except RuleFileError as exc:
        rules, problems = load_rules([], builtin=True), exc.problems
    return models.RuleList(
        generation=generation, rules=[_info(r) for r in rules], problems=problems
    )


@router.post(
    "/validate",
    operation_id="validateRules",
    response_model=models.RuleValidation,
    summary="Validate a rule file with the running set (nothing is stored)",
    responses=problem_responses(401, 422),
)
def validate_rules(
    conn: Conn,
    _caller: Agent,
    body: models.RuleText,
    name: Annotated[
        str, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="as if stored as")
    ] = "draft",
) -> models.RuleValidation:
    try:
        rules = _combined(conn, (name, body.text))
    except RuleFileError as exc:
        return models.RuleValidation(valid=False, rules=[], problems=exc.problems)
    mine = [_info(r) for r in rules if r.source.startswith(source(name) + ":")]
    return models.RuleValidation(valid=True, rules=mine, problems=[])


@router.get(
    "/files",
    operation_id="listRuleFiles",
    response_model=list[models.RuleFile],
    summary="The rule files stored through the API",
    responses=problem_responses(401),
)
def list_rule_files(conn: Conn, _caller: Agent) -> list[models.RuleFile]:
    return [models.RuleFile(**r) for r in queries.list_rule_files(conn)]


@router.get(
    "/files/{name}",
    operation_id="getRuleFile",
    response_model=models.RuleFile,
    summary="A stored rule file",
    responses=problem_responses(401, 404, 422),
)
def get_rule_file(conn: Conn, _caller: Agent, name: FileName) -> models.RuleFile:
    return models.RuleFile(**queries.get_rule_file(conn, name))


@router.put(
    "/files/{name}",
    operation_id="putRuleFile",
    response_model=models.RuleFile,
    summary="Store a rule file (supervisor); refused with every problem when it does not load",
    responses=problem_responses(401, 403, 422),
)
def put_rule_file(
    conn: Conn, caller: Supervisor, name: FileName, body: models.RuleText
) -> models.RuleFile:
    _combined(conn, (name, body.text))  # RuleFileError: 422 with the problems
    return models.RuleFile(**queries.put_rule_file(conn, name, body.text, actor=caller.name))


@router.delete(
    "/files/{name}",
    operation_id="deleteRuleFile",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a stored rule file (supervisor)",
    responses=problem_responses(401, 403, 404, 422),
)
def delete_rule_file(conn: Conn, _caller: Supervisor, name: FileName) -> Response:
    queries.delete_rule_file(conn, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/reload",
    operation_id="reloadRules",
    response_model=models.Reload,
    summary="Ask the rules workers to reload (supervisor), after checking the set loads",
    responses=problem_responses(401, 403, 422),
)
def reload_rules(conn: Conn, caller: Supervisor) -> models.Reload:
    rules = _combined(conn)
    generation = queries.bump_rule_generation(conn, actor=caller.name)
    return models.Reload(generation=generation, rules=len(rules))
