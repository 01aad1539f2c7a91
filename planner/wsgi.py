import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "planner.settings")
application = get_wsgi_application()

# Import every view now (and with them fits, numpy, pandas, scipy, matplotlib), not on a worker's first request:
# gunicorn preloads this module in its master (deploy/gunicorn.conf.py), so a recycled worker is forked ready to
# serve instead of spending seconds importing while the other worker takes all the load.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns
