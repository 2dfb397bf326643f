"""One router module per resource, included by gateway.app."""
