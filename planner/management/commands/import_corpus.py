"""manage.py import_corpus FILE[.gz]: import a canonical corpus CSV (../shared/CORPUS_FORMAT.md)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fits import CorpusValidationError, read_families
from planner.corpus.importing import ImportInterrupted, import_canonical
from planner.corpus.stats import families_refresh_after_import


class Command(BaseCommand):
    help = (
        "Import a canonical corpus CSV (gzip detected automatically). Every row is validated first; "
        "by default one bad row aborts the import and nothing is written. Re-importing a file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="canonical CSV, optionally .gz")
        parser.add_argument("--families", type=Path, metavar="FILE.csv",
                            help="family table (format of ../shared/corpus/families.csv): arch, dataset, source, "
                                 "notes and primary metric for the families imported")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="write the valid rows and print a report of the rejected ones")
        parser.add_argument("--replace", action="store_true",
                            help="when a stored observation (same run, metric, tokens) has a different value, "
                                 "overwrite its value, step, epochs, flops, split, dataset and source instead of "
                                 "rejecting the row; with --families, also overwrite curated family fields. "
                                 "A run's family, arch and params can never be changed by an import.")

    def handle(self, *args, file, families=None, skip_invalid=False, replace=False, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            family_table = read_families(families) if families else None
            report = import_canonical(file, families=family_table, skip_invalid=skip_invalid, replace=replace,
                                      progress=self._progress if options["verbosity"] > 1 else None)
        except (CorpusValidationError, ImportInterrupted) as exc:
            raise CommandError(str(exc).replace("Upload it again", "Run the command again")) from exc
        for problem in report.problems:
            self.stdout.write(f"skipped: {problem}")
        families_refresh_after_import(report=report)
        self.stdout.write(report.summary())

    def _progress(self, fraction, message):
        self.stdout.write(f"[{fraction:4.0%}] {message}")
