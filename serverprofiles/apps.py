from django.apps import AppConfig


class ServerProfilesConfig(AppConfig):
    name = "serverprofiles"
    verbose_name = "Email server profiles"
