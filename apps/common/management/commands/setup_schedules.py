"""Upsert the periodic jobs declared in settings.PERIODIC_TASKS into django-q2 (idempotent)."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.models import Schedule


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules declared in settings.PERIODIC_TASKS."

    def handle(self, *args, **options):
        declared = {task["name"] for task in settings.PERIODIC_TASKS}
        for task in settings.PERIODIC_TASKS:
            fields = {key: value for key, value in task.items() if key != "name"}
            Schedule.objects.update_or_create(name=task["name"], defaults=fields)
        removed, _ = (
            Schedule.objects.filter(name__startswith=settings.PERIODIC_TASK_PREFIX)
            .exclude(name__in=declared)
            .delete()
        )
        self.stdout.write(f"{len(declared)} schedules up to date, {removed} removed.")
