"""Remote sales made before Payment.staff_member kept the staff member's email in
custom_data["created_by"]: copy it, so lists and exports name who sold every sale."""

from django.db import migrations

FORWARD = """
UPDATE payments_payment
   SET staff_member = LEFT(custom_data->>'created_by', 150)
 WHERE origin IN ('pos_sms', 'pos_link')
   AND staff_member = ''
   AND custom_data ? 'created_by'
"""


class Migration(migrations.Migration):
    dependencies = [("payments", "0010_payment_staff_member_payment_terminal_name")]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=migrations.RunSQL.noop)]
