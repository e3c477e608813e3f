"""Roles and what each one may do."""

from __future__ import annotations

import enum


class Role(enum.IntEnum):
    """Ordered: a higher role can do everything a lower one can."""

    VIEWER = 1
    """Reads everything."""
    OPERATOR = 2
    """Deploys, rolls back, registers models, reports metrics, acknowledges alerts."""
    ADMIN = 3
    """Manages tokens and restarts the system."""

    def allows(self, required: Role) -> bool:
        return self >= required

    @classmethod
    def parse(cls, text: str) -> Role:
        return cls[text.strip().upper()]
