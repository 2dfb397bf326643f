"""Worker processes: one pool per queue, started by `adq worker student|teacher`."""
