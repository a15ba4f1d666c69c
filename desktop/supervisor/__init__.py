"""The supervisor status view's Qt layer: the agents model and the window (over desktop.reporting)."""
