"""Template tags for the stream partials (issue 6): may this user open that stream?

``{% load streams %}{% may "exec" c as can_exec %}`` asks ``permissions.can`` for the
request's user, so a partial hides what the consumer would refuse anyway, without the
page's view having to pass one flag per stream.
"""

from __future__ import annotations

from typing import Any

from django import template

from containers_app import permissions

register = template.Library()


@register.simple_tag(takes_context=True)
def may(context: dict[str, Any], verb: str, obj: Any) -> bool:
    request = context.get("request")
    return request is not None and permissions.can(request.user, verb, obj)
