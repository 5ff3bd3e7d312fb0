"""The "which team will own it" choice that every create form carries.

The choice lists the teams where the user may do the verb (plus "global" for site
admins); a posted value is only parsed here, never trusted: the service checks the team
again and refuses (403, audited) whatever a forged form names.
"""

from __future__ import annotations

from django.http import HttpRequest

from containers_app import permissions
from containers_app.models import Team

NO_SUCH_TEAM = "There is no such team."


def team_choices(request: HttpRequest, verb: str) -> list[tuple[str, str]]:
    choices = [(str(t.pk), t.name) for t in permissions.teams_for(request.user, verb)]
    if permissions.is_site_admin(request.user):
        choices.append(("", "(global: no team)"))
    return choices


def chosen_team(value: str) -> tuple[Team | None, str | None]:
    """(team, None) for a team id, (None, None) for "global", (None, error) for garbage."""
    value = value.strip()
    if not value:
        return None, None
    if not value.isdigit() or len(value) > 18:  # beyond a 64-bit key: not a team
        return None, NO_SUCH_TEAM
    team = Team.objects.filter(pk=int(value)).first()
    return (team, None) if team is not None else (None, NO_SUCH_TEAM)
