"""Models that mirror engine objects (containers, images, networks, volumes) per host.

The engine's state on disk is the source of truth; these rows are a cache for filtering,
paging and permission checks. None yet.
"""
