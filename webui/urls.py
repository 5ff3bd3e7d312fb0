"""URL map of the dashboard."""

from django.contrib import admin
from django.urls import path

from containers_app import views

urlpatterns = [
    path("_ping", views.ping, name="ping"),
    path("admin/", admin.site.urls),
    path("", views.home, name="home"),
]
