"""The read model: every query a page, the API, Open311 or the CLI shows, returning typed results.

Adapters parse, call one function here, and render; none builds SQL of its own.

- ``pages``: the staff pages' queues, overdue board, ticket page, log search, sample, choices.
- ``api``: the JSON API's ticket list, ticket row and history.
- ``open311``: what GeoReport v2 serves (services, requests) and nothing personal.
- ``reference``: campaigns, and the CLI's ticket list and ticket page.

The log's columns are read in one place (``pages.log_entry`` builds every ``LogEntry``).
"""
