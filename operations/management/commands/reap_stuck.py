from django.core.management.base import BaseCommand

from pipelines import services


class Command(BaseCommand):
    help = (
        "Fail pipelines stuck in provisioning, deploying or deleting past their deadline "
        "(TROY_STUCK_*_SECONDS), once, in this process. `manage.py scheduler` does this periodically."
    )

    def handle(self, *args, **options):
        reaped = services.pipelines_reap_stuck()
        for name in reaped:
            self.stdout.write(f"failed stuck pipeline {name}")
        self.stdout.write(f"{len(reaped)} stuck pipeline(s) failed")
        resent = services.pipelines_resend_waiting()
        for name in resent:
            self.stdout.write(f"sent the worker message again for waiting pipeline {name}")
