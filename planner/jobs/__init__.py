"""Jobs: the Job row and its guarded transitions, task dispatch by name, the Celery tasks, recovery, the admin."""
