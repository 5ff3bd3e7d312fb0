"""The actions layer: the one place that checks permissions, writes audit entries,
creates Job rows and enqueues Celery tasks. Views and consumers call these functions and
nothing deeper; see /work/notes/dashboard-api.md for the list.

Modules: ``containers``, ``images``, ``networks``, ``volumes``, ``jobs``, ``audit``,
``events``, ``host``.
"""
