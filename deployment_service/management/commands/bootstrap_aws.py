from django.core.management.base import BaseCommand, CommandError

from deployment_service.bootstrap import BootstrapError, bootstrap_aws_resources


class Command(BaseCommand):
    help = (
        "Create Troy's shared AWS resources (buckets, hosted zone, CodeBuild project, SNS topic and, with "
        "TROY_EDGE_POINTERS=kvs, the edge router) if missing."
    )

    def handle(self, *args, **options):
        try:
            report = bootstrap_aws_resources()
        except BootstrapError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(f"hosted zone id: {report.hosted_zone_id}")
        self.stdout.write(f"sns topic arn:  {report.sns_topic_arn}")
        if report.wildcard_distribution_id:
            self.stdout.write(
                f"previews:       {report.wildcard_distribution_id} ({report.wildcard_distribution_domain})"
            )
        if report.edge_router:
            self.stdout.write(f"edge router:    {report.edge_router}")
            self.stdout.write("existing distributions move to it with `manage.py edge_rollout`")
