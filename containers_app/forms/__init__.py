"""Forms of the dashboard: parse what a user typed into the values services take.

Each field reports its own error in one sentence, so garbage in any field of the create
form comes back as a field error next to it, never as a 500. Parsing reuses the engine's
own parsers (``runtime.units``, ``runtime.spec``) so the dashboard accepts exactly what
``moorage run`` accepts. Risky options (privileged, added capabilities, devices, host
network/pid/ipc, host bind mounts) are only offered to users allowed to use them; the
services refuse them again on their own, whatever a forged POST contains.
"""

from containers_app.forms.accounts import (
    AuditFilterForm,
    MembershipForm,
    TeamCreateForm,
    UserCreateForm,
)
from containers_app.forms.containers import (
    BULK_ACTIONS,
    BulkActionForm,
    CommitForm,
    ContainerCreateForm,
    ContainerFilterForm,
    RenameForm,
)
from containers_app.forms.images import BulkTagForm, ImageFilterForm, ImageImportForm
from containers_app.forms.resources import NetworkCreateForm, VolumeCreateForm

__all__ = [
    "BULK_ACTIONS",
    "AuditFilterForm",
    "BulkActionForm",
    "BulkTagForm",
    "CommitForm",
    "ContainerCreateForm",
    "ContainerFilterForm",
    "ImageFilterForm",
    "ImageImportForm",
    "MembershipForm",
    "NetworkCreateForm",
    "RenameForm",
    "TeamCreateForm",
    "UserCreateForm",
    "VolumeCreateForm",
]
