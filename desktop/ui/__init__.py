"""The agent desktop's Qt face. Presentation logic lives in Qt-free modules (presenter, settings) so it
is testable without a display; widgets only render it and forward the agent's intents."""
