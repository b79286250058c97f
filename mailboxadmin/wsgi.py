import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailboxadmin.settings")
application = get_wsgi_application()

from mailboxadmin.checks import refuse_to_start_without_keys  # noqa: E402

refuse_to_start_without_keys()
