"""manage.py ensure_error_model: what a starting server does about its error model (scripts/serve runs it).

No active error model and the database holds the shipped corpus: the shipped model is stored and activated
(plans work at once). Another corpus, or an active model built from a corpus that has changed since: a
rebuild (a sweep job) is queued for the workers. See planner.errormodels.shipped.
"""
from django.core.management.base import BaseCommand

from planner.errormodels.shipped import error_model_ensure


class Command(BaseCommand):
    help = ("Make sure plans can be made: load the shipped error model when the database holds the corpus it was "
            "built from and none is active, otherwise queue a rebuild when the corpus has changed.")

    def handle(self, *args, **options):
        self.stdout.write(error_model_ensure())
