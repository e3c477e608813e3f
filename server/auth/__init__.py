"""Authentication (bearer tokens) and authorisation (roles)."""

from .roles import Role
from .tokens import Identity, IssuedToken, TokenInfo, TokenService

__all__ = ["Identity", "IssuedToken", "Role", "TokenInfo", "TokenService"]
