"""The control plane: live tau from the student scores all workers see, an effective k from the controller, and
the decision that combines them. No Celery here: the controller's loop lives in tasks/controller.py."""
