from django.apps import AppConfig


class IssuingConfig(AppConfig):
    name = "apps.issuing"
    label = "issuing"
