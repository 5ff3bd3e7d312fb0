"""Paging and query-string helpers shared by the list pages."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PER_PAGE = 50


def page_of(request: HttpRequest, items: Any, per_page: int = PER_PAGE) -> Page:
    """The requested page; a bad or out-of-range ?page= gives the nearest valid page."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def query_without(request: HttpRequest, *names: str) -> str:
    """The current query string minus ``names`` (for links that change one parameter)."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()
