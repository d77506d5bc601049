from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from integrations import signals, streams  # noqa: F401 (signals connects the receivers)

        streams.install()
