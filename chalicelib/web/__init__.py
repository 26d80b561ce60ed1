"""HTTP: blueprints, rendering, sessions, CSRF and security headers."""
