"""Imports every model so that metadata (Alembic, tests) sees all tables."""

from gatehouse.auth.models import RefreshToken, Session
from gatehouse.db.base import Base
from gatehouse.users.models import User

__all__ = ["Base", "RefreshToken", "Session", "User"]
