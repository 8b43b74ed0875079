import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from operations.scheduler import run_scheduler, start_local_source_poller


class Command(BaseCommand):
    help = (
        "Enqueue the stuck-pipeline reaper, the CodeBuild reconciler and the releases' care every "
        "TROY_REAPER_INTERVAL_SECONDS, and the retention care every TROY_RETENTION_INTERVAL_SECONDS "
        "(run exactly one of these beside the workers). "
        "Stops cleanly on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Enqueue every periodic job once and exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between ticks (default: TROY_REAPER_INTERVAL_SECONDS).",
        )

    def handle(self, *args, once: bool, interval: float | None, **options):
        interval = interval if interval is not None else settings.TROY_REAPER_INTERVAL_SECONDS
        if interval <= 0:
            raise CommandError("--interval must be positive")
        stop = threading.Event()
        if not once and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        if not once:
            self.stdout.write(f"scheduler: enqueueing the reaper and the CodeBuild reconciler every {interval:g} s")
        poller = None if once else start_local_source_poller(stop)
        if poller is not None:
            self.stdout.write(
                f"scheduler: polling local git sources every {settings.TROY_LOCAL_SOURCES_POLL_SECONDS:g} s"
            )
        ticks = run_scheduler(stop, interval=interval, once=once)
        if poller is not None:
            poller.join(timeout=5)
        self.stdout.write(f"scheduler: enqueued the periodic jobs {ticks} time(s)")
