"""Users, their tokens and their profile settings (SPEC §4)."""

from __future__ import annotations

from fastapi import APIRouter

from syncd.api.auth import CRM, NodeDep, OwnUser, UserId
from syncd.api.schemas import CalendarState, SettingsIn, SettingsOut, TokenOut, UserIn, UserOut
from syncd.daemon import Node
from syncd.store.tables import User

router = APIRouter(prefix="/v1/users", tags=["users"])


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, name=user.name, email=user.email, timezone=user.timezone,
                   locale=user.locale, all_day_notify_at=user.all_day_notify_at,
                   channels=user.preferences)


def settings_out(user: User, n: Node) -> SettingsOut:
    state = n.mirror.status(user.id)["state"] if n.mirror else "off"
    return SettingsOut(timezone=user.timezone, locale=user.locale,
                       all_day_notify_at=user.all_day_notify_at, channels=user.preferences,
                       google_calendar=CalendarState(state=state))


@router.put("/{id}", response_model=UserOut)
def put_user(id: UserId, body: UserIn, _: CRM, n: NodeDep) -> UserOut:
    return user_out(n.service.put_user(id, body.model_dump(exclude_unset=True)))


@router.get("/{id}", response_model=UserOut)
def get_user(id: OwnUser, n: NodeDep) -> UserOut:
    return user_out(n.service.get_user(id))


@router.post("/{id}/tokens", response_model=TokenOut, status_code=201)
def issue_token(id: UserId, _: CRM, n: NodeDep) -> TokenOut:
    return TokenOut(token=n.service.issue_token(id))


@router.get("/{id}/settings", response_model=SettingsOut)
def get_settings(id: OwnUser, n: NodeDep) -> SettingsOut:
    return settings_out(n.service.get_user(id), n)


@router.patch("/{id}/settings", response_model=SettingsOut)
def patch_settings(id: OwnUser, body: SettingsIn, n: NodeDep) -> SettingsOut:
    return settings_out(n.service.patch_settings(id, body.model_dump(exclude_unset=True)), n)
