from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipelines.flows.edge import rollout_run


class Command(BaseCommand):
    help = (
        "Publish this checkout's edge router (viewer function + origin Lambda version) and update every "
        "distribution Troy keeps to it (docs/edge.md). Safe to run again; --dry-run lists what would change."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="publish and update nothing; list what would change")

    def handle(self, *args, **options):
        if settings.TROY_EDGE_POINTERS != "kvs":
            raise CommandError(
                "TROY_EDGE_POINTERS is 'local': there is no AWS router (the local edge serves the sites)."
            )
        for line in rollout_run(dry_run=options["dry_run"]):
            self.stdout.write(line)
