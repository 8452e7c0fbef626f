"""Tasks as the CRM upserts them (SPEC §1): an update carries only what changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from syncd.api.auth import CRM, NodeDep
from syncd.api.schemas import ID_PATTERN, CompleteIn, EntityOut, Id, TaskIn, TaskOut, TaskPage
from syncd.errors import InvalidInput
from syncd.store.tables import Task

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
TaskId = Annotated[str, Path(pattern=ID_PATTERN)]


def task_out(t: Task) -> TaskOut:
    entity = (EntityOut(type=t.entity_type, id=t.entity_id, url=t.entity_url)
              if t.entity_type and t.entity_id else None)
    return TaskOut(id=t.id, text=t.text, type=t.type, author_id=t.author_id,
                   responsible_id=t.responsible_id, due_at=t.due_at, due_date=t.due_date,
                   duration_minutes=t.duration_minutes, entity=entity,
                   completed_at=t.completed_at, completed_by=t.completed_by, result=t.result,
                   created_at=t.created_at, updated_at=t.updated_at)


@router.put("/{id}", response_model=TaskOut)
def upsert_task(id: TaskId, body: TaskIn, _: CRM, n: NodeDep) -> TaskOut:
    fields = body.model_dump(exclude_unset=True)
    if fields.get("due_at") is not None and fields.get("due_date") is not None:
        raise InvalidInput("a task has either due_at or due_date, not both", field="due_date")
    actor = fields.pop("actor_id")
    if "entity" in fields:
        entity = fields.pop("entity") or {}
        fields.update(entity_type=entity.get("type"), entity_id=entity.get("id"),
                      entity_url=entity.get("url"))
    return task_out(n.service.upsert_task(id, fields, actor_id=actor))


@router.get("/{id}", response_model=TaskOut)
def get_task(id: TaskId, _: CRM, n: NodeDep) -> TaskOut:
    return task_out(n.service.get_task(id))


@router.get("", response_model=TaskPage)
def list_tasks(_: CRM, n: NodeDep, responsible_id: Id | None = None, open: bool | None = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               cursor: Annotated[str | None, Query(pattern=ID_PATTERN)] = None) -> TaskPage:
    rows, nxt = n.service.list_tasks(responsible_id, open, limit, cursor)
    return TaskPage(items=[task_out(t) for t in rows], next_cursor=nxt)


@router.post("/{id}/complete", response_model=TaskOut)
def complete_task(id: TaskId, body: CompleteIn, _: CRM, n: NodeDep) -> TaskOut:
    return task_out(n.service.complete_task(id, body.by, body.result))


@router.delete("/{id}", status_code=204)
def delete_task(id: TaskId, _: CRM, n: NodeDep) -> Response:
    n.service.delete_task(id)
    return Response(status_code=204)
