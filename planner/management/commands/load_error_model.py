"""manage.py load_error_model M.json [--no-activate]: store an error model built elsewhere as the next version.

The file is what ``python -m fits calibrate --train ... --save-model M.json`` writes; it is checked by the
library (``ErrorModel.from_dict``) before anything is stored.
"""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from fits import ErrorModel
from planner.errormodels.services import error_model_store


class Command(BaseCommand):
    help = ("Store an error model file (from `python -m fits calibrate --save-model M.json`) as the next "
            "version and make it the active one, so plans can be made without a sweep on this server.")

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the error model's JSON file")
        parser.add_argument("--no-activate", action="store_true", help="store it without making it active")

    def handle(self, *args, path: Path, no_activate=False, **options):
        try:
            data = json.loads(path.read_text())
            ErrorModel.from_dict(data)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{path} is not an error model this library reads: {exc}") from exc
        with transaction.atomic():
            artifact = error_model_store(model=data, activate=not no_activate)
        state = "stored" if no_activate else "stored and active"
        self.stdout.write(f"error model v{artifact.version} {state} (from {path})")
