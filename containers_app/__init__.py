"""The dashboard's Django app: models, permissions, services, views, consumers, tasks.

It calls ``runtime`` (the engine) and never the other way round.
"""
