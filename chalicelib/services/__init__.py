"""Use cases. A service holds the rules and never sees an HTTP request."""
