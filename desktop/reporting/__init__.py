"""Supervisor reporting: the Qt-free engine that merges the servers' reporting streams, and the
asyncio client that feeds it from real sockets. The Qt view (desktop.supervisor) only renders it."""

from .engine import (
    AgentRow,
    FeedEntry,
    Presence,
    ReportingEngine,
    Resubscribe,
    ServerStatus,
)

__all__ = ["AgentRow", "FeedEntry", "Presence", "ReportingEngine", "Resubscribe", "ServerStatus"]
