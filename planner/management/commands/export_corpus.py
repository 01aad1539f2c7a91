"""manage.py export_corpus FILE [--family NAME ...]: write the corpus as canonical CSV."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from planner.corpus.exporting import export_canonical
from planner.corpus.models import Family


class Command(BaseCommand):
    help = "Write the stored corpus as canonical CSV (gzip-compressed if FILE ends in .gz); `-` writes to stdout."

    def add_arguments(self, parser):
        parser.add_argument("file", help="output path (.csv or .csv.gz), or - for stdout")
        parser.add_argument("--family", action="append", dest="families", metavar="NAME",
                            help="export only this family (repeatable)")

    def handle(self, *args, file, families=None, **options):
        if families:
            unknown = sorted(set(families) - set(Family.objects.filter(name__in=families).values_list("name", flat=True)))
            if unknown:
                raise CommandError("unknown family: " + ", ".join(unknown))
        if file == "-":
            count = export_canonical(self.stdout._out, families=families)
            self.stderr.write(f"wrote {count} rows")
            return
        count = export_canonical(Path(file), families=families)
        self.stdout.write(f"wrote {count} rows to {file}")
