"""Pages of the dashboard, one module per area. Views stay thin: parse the request, call
a service (which checks permissions, audits and queues jobs), render. Errors raised by
services reach ``containers_app.errors.ErrorMiddleware``, the one place that maps them to
HTTP statuses.

Modules: ``auth`` (sign in/out, password, throttling), ``system`` (ping, dashboard,
events), ``containers``, ``images``, ``jobs``, ``storage`` (networks and volumes),
``audit``, ``accounts`` (users and teams, site admins).
"""
