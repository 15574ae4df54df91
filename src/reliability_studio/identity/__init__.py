"""Who is calling: API tokens, sessions, roles and the request's actor."""
