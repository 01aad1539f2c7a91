"""manage.py ship_error_model: remake the error model shipped in the repository and its corpus fingerprint.

    python manage.py ship_error_model                      # calibrate on ../shared/corpus (about 1-2 min)
    python manage.py ship_error_model --error-model M.json # or ship a model made already

The model is what ``python -m fits calibrate --train CORPUS... --save-model M.json`` writes (run here in a
subprocess, the library's own command); the fingerprint is computed from the same files the way a starting
server computes it from its database (planner.errormodels.shipped). Run it when the shipped corpus or the
error model's format changes; tests/planner/errormodels/test_shipped.py fails until then.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fits import ErrorModel
from planner.errormodels.shipped import SHIPPED_FINGERPRINT, SHIPPED_MODEL, files_fingerprint


def shipped_corpus() -> list[Path]:
    corpus = Path(settings.SCALEPLAN_SHARED_DIR) / "corpus"
    return [corpus / "colpret.csv.gz", corpus / "extra" / "observations.csv.gz"]


class Command(BaseCommand):
    help = "Remake planner/errormodels/shipped/ (error_model.json and fingerprint.json) from the shipped corpus."

    def add_arguments(self, parser):
        parser.add_argument("--corpus", type=Path, nargs="+", metavar="FILE.csv.gz",
                            help="canonical corpus files, each with its families.csv beside it "
                                 "(default: ../shared/corpus/colpret.csv.gz and extra/observations.csv.gz)")
        parser.add_argument("--error-model", type=Path, metavar="M.json",
                            help="a model made already by `python -m fits calibrate --save-model` on these files")
        parser.add_argument("--jobs", type=int, default=None, help="worker processes for calibrate's sweeps")

    def handle(self, *args, corpus=None, error_model=None, jobs=None, **options):
        files = corpus or shipped_corpus()
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CommandError(f"corpus files not found: {', '.join(missing)}")
        with tempfile.TemporaryDirectory() as scratch:
            if error_model is None:
                error_model = Path(scratch) / "error_model.json"
                command = [sys.executable, "-m", "fits", "calibrate", "--train", *map(str, files),
                           "--save-model", str(error_model), "--quiet"]
                if jobs:
                    command += ["--jobs", str(jobs)]
                self.stdout.write("running " + " ".join(command[1:]))
                if subprocess.run(command).returncode != 0:
                    raise CommandError("python -m fits calibrate failed (see above)")
            model = json.loads(error_model.read_text())
            try:
                ErrorModel.from_dict(model)
            except (KeyError, TypeError, ValueError) as exc:
                raise CommandError(f"{error_model} is not an error model this library reads: {exc}") from exc
        fingerprint = files_fingerprint(files)
        SHIPPED_MODEL.parent.mkdir(parents=True, exist_ok=True)
        SHIPPED_MODEL.write_text(json.dumps(model, indent=1, allow_nan=False) + "\n")
        SHIPPED_FINGERPRINT.write_text(json.dumps({
            "fingerprint": fingerprint,
            "corpus": [f.name if f.parent.name == "corpus" else f"{f.parent.name}/{f.name}" for f in files],
            "made_by": "python manage.py ship_error_model (python -m fits calibrate --train <corpus> --save-model)",
        }, indent=1) + "\n")
        self.stdout.write(f"wrote {SHIPPED_MODEL} ({SHIPPED_MODEL.stat().st_size} bytes) and {SHIPPED_FINGERPRINT}: "
                          f"{fingerprint['families']} families, {fingerprint['runs']} runs, "
                          f"{fingerprint['observations']} observations")
