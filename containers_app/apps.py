from django.apps import AppConfig


class ContainersAppConfig(AppConfig):
    name = "containers_app"
    verbose_name = "Containers"
    default_auto_field = "django.db.models.BigAutoField"
