"""Demo data and replays: not the domain.

The engine keeps no fixture code; what ``rectiflow demo`` loads and replays lives here
and drives the engine only through its public services, as any adapter does.
"""
