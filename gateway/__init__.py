"""The HTTP gateway (`adq api`): jobs over REST for web backends, with auth, webhooks, health and metrics."""
