# Local git sources (TROY_LOCAL_SOURCES): a longer repository field for file:// paths, and the branch head last seen.

import pipelines.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('pipelines', '0010_environment'),
        # Merged after the build logs (wip/logs), which also follow 0010.
        ('pipelines', '0011_build_logs'),
    ]

    operations = [
        migrations.AddField(
            model_name='pipeline',
            name='source_head',
            field=models.CharField(blank=True, default='', max_length=40),
        ),
        migrations.AlterField(
            model_name='pipeline',
            name='repository',
            field=models.CharField(blank=True, default='', help_text="GitHub 'owner/repo', or file:///path of a local git repository (TROY_LOCAL_SOURCES); empty for release-only pipelines.", max_length=1024, validators=[pipelines.validators.validate_repository]),
        ),
    ]
