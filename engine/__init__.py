"""rectiflow's domain core: tickets, workflows, deadlines, audit, reports.

Nothing here imports Flask, APScheduler or ``web``; callers pass ``now`` and a
SQLAlchemy session, and commit once.
"""
