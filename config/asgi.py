import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from ops.shedding import LoadShedding

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = LoadShedding(get_asgi_application(), max_pending=settings.WEB_MAX_PENDING_REQUESTS)
