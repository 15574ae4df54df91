"""What every router shares: problem responses, pagination, middleware and dependencies."""
