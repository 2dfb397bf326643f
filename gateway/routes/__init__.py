"""One router module per resource, included by adq.gateway.app."""
