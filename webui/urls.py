"""URL map of the site: the dashboard's pages at the root, Django's admin under /admin/.

The admin's own sign-in page redirects to the dashboard's, so every sign-in goes through
the one throttled view.
"""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("", include("containers_app.urls")),
]
