"""Audit trail: every read or export of personal data records who, what, when and how many rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.security import AuthUser
from server.db.models import AuditEvent


def record_audit(
    session: AsyncSession,
    user: AuthUser | None,
    action: str,
    resource: str,
    *,
    campaign_id: int | None = None,
    row_count: int = 0,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the current unit of work (it commits or rolls back with the read it records)."""
    session.add(
        AuditEvent(
            user_id=user.id if user else None,
            device_id=user.device_id if user else None,
            campaign_id=campaign_id,
            action=action,
            resource=resource,
            row_count=row_count,
            detail=detail or {},
        )
    )
