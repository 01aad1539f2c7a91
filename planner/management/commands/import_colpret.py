"""manage.py import_colpret SOURCE: convert a ColPret checkout (directory or pinned raw-file URL) and import it."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from fits import CorpusValidationError, frame_to_raw, validate_canonical
from planner.corpus.colpret.convert import convert
from planner.corpus.colpret.fetch import DownloadError
from planner.corpus.importing import import_canonical
from planner.corpus.stats import families_refresh_after_import


class Command(BaseCommand):
    help = (
        "Convert a ColPret checkout into the canonical corpus (rules: ../shared/colpret/README.md) and import it. "
        "SOURCE is a directory laid out like a ColPret checkout, or the https base URL of the repository's raw "
        "files at a pinned commit, e.g. https://raw.githubusercontent.com/IBM/ColPret/<commit>/. "
        "Absent files are reported, not fatal. Re-running changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="ColPret checkout directory or raw-file base URL")
        parser.add_argument("--replace", action="store_true",
                            help="Overwrite stored values (and curated family fields) that differ from the source.")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="Import the valid rows and report the rest (default: any bad row aborts).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Convert and validate only; write nothing to the database.")
        parser.add_argument("--out", type=Path, metavar="FILE.csv[.gz]",
                            help="Also write the converted rows as a canonical CSV (gzip if the name ends in .gz).")
        parser.add_argument("--families-out", type=Path, metavar="FILE.csv",
                            help="Also write the family table (the format of ../shared/corpus/families.csv).")

    def handle(self, *args, source, replace=False, skip_invalid=False, dry_run=False, out=None, families_out=None,
               **options):
        try:
            result = convert(source)
        except (DownloadError, ValueError, OSError) as exc:
            raise CommandError(f"cannot convert {source}: {exc}") from exc
        rows = result.rows
        self.stdout.write(f"converted {len(rows)} rows, {rows['model'].nunique()} runs, "
                          f"{len(result.families)} families from {source}")
        for missing in result.missing:
            self.stdout.write(f"missing: {missing}")
        for warning in result.warnings:
            self.stdout.write(f"warning: {warning}")
        if out:
            rows.to_csv(out, index=False)
            self.stdout.write(f"wrote {out}")
        if families_out:
            result.families.to_csv(families_out, index=False)
            self.stdout.write(f"wrote {families_out}")

        try:
            if dry_run:
                valid, problems = validate_canonical(frame_to_raw(rows), skip_invalid=skip_invalid)
                self.stdout.write(f"dry run: {len(valid)} rows valid, {len(problems)} problems; nothing written")
                return
            report = import_canonical(rows, families=result.families, replace=replace, skip_invalid=skip_invalid)
        except CorpusValidationError as exc:
            raise CommandError(str(exc)) from exc
        for problem in report.problems:
            self.stdout.write(f"skipped: {problem}")
        families_refresh_after_import(report=report)
        self.stdout.write(report.summary())
