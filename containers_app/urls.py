"""URL map of the dashboard's pages (webui/urls.py includes it at the root).

Object URLs carry the engine id (or, for images, the ``sha256:`` id); lookups go through
the services, which return 404 for objects of teams the user is not in.
"""

from django.urls import path

from containers_app.views import (
    accounts,
    audit,
    auth,
    builds,
    containers,
    images,
    jobs,
    registries,
    storage,
    streams,
    system,
)

urlpatterns = [
    path("_ping", system.ping, name="ping"),
    path("", system.dashboard, name="home"),
    path("login/", auth.ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("password/", auth.PasswordChangeView.as_view(), name="password-change"),
    # containers
    path("containers/", containers.container_list, name="containers"),
    path("containers/bulk/", containers.bulk, name="containers-bulk"),
    path("containers/create/", containers.create, name="container-create"),
    path("containers/merged-logs/", streams.merged_logs, name="containers-logs-merged"),
    path("containers/<str:ref>/", containers.detail, name="container"),
    path("containers/<str:ref>/action/<str:verb>/", containers.action, name="container-action"),
    path("containers/<str:ref>/rename/", containers.rename, name="container-rename"),
    path("containers/<str:ref>/commit/", containers.commit, name="container-commit"),
    path("containers/<str:ref>/top/", containers.top, name="container-top"),
    path("containers/<str:ref>/diff/", containers.diff, name="container-diff"),
    path("containers/<str:ref>/logs/", containers.logs, name="container-logs"),
    path(
        "containers/<str:ref>/logs/download/",
        streams.log_download,
        name="container-logs-download",
    ),
    path("containers/<str:ref>/terminal/", streams.terminal, name="container-terminal"),
    # jobs
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/<int:pk>/", jobs.detail, name="job"),
    path("jobs/<int:pk>/progress/", jobs.progress, name="job-progress"),
    path("jobs/<int:pk>/cancel/", jobs.cancel, name="job-cancel"),
    # images
    path("images/", images.image_list, name="images"),
    path("images/tag/", images.bulk_tag, name="images-tag"),
    path("images/remove/", images.bulk_remove, name="images-remove"),
    path("images/import/", images.import_tarball, name="image-import"),
    path("images/build/", builds.build, name="image-build"),
    path("images/pull/", builds.pull, name="image-pull"),
    path("images/jobs/<int:pk>/", builds.job_output, name="image-job"),
    path("images/<str:ref>/push/", builds.push, name="image-push"),
    path("images/<str:ref>/", images.detail, name="image"),
    # networks and volumes
    path("networks/", storage.network_list, name="networks"),
    path("networks/create/", storage.network_create, name="network-create"),
    path("networks/remove/", storage.network_remove, name="network-remove"),
    path("networks/<str:ref>/", storage.network_detail, name="network"),
    path("volumes/", storage.volume_list, name="volumes"),
    path("volumes/create/", storage.volume_create, name="volume-create"),
    path("volumes/remove/", storage.volume_remove, name="volume-remove"),
    path("volumes/<str:ref>/", storage.volume_detail, name="volume"),
    # events and audit
    path("events/", system.events, name="events"),
    path("audit/", audit.audit_list, name="audit"),
    # users and teams (site admins)
    path("users/", accounts.user_list, name="users"),
    path("users/<int:pk>/", accounts.user_detail, name="user"),
    path("teams/", accounts.team_list, name="teams"),
    path("teams/<int:pk>/", accounts.team_detail, name="team"),
    # registries (entries: site admins)
    path("registries/", registries.registry_list, name="registries"),
    path("registries/<int:pk>/", registries.registry_edit, name="registry"),
    path("registries/<int:pk>/remove/", registries.registry_remove, name="registry-remove"),
]
