from django.db import migrations

from apps.common.config_cache import NOTIFY_FUNCTION_SQL


class Migration(migrations.Migration):
    """The trigger function that tells every process's config cache a cached table changed."""

    dependencies = [("common", "0001_initial")]

    operations = [migrations.RunSQL(NOTIFY_FUNCTION_SQL, "DROP FUNCTION tranche_notify_config();")]
