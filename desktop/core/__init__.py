"""The Qt-free session core: ``AgentSession`` (session.py) fed with inputs and time, returning the
typed outputs of events.py; settings in config.py."""

from .config import SessionConfig
from .events import StateIntent
from .session import AgentSession

__all__ = ["AgentSession", "SessionConfig", "StateIntent"]
