"""The control plane: live tau from the student scores all workers see, an effective k from the controller, the
decision that combines them, teacher-pool sizing and the day simulator. Imports ``jobs``, ``method`` and ``core``.
No Celery here: the controller's loop lives in tasks/controller.py."""
