"""The run command's settings: embedded PostgreSQL, local model, auth off on loopback only."""

from .base import *  # noqa: F403
from .base import env

AUTH_MODE = env.str("AUTH_MODE", default="none")
