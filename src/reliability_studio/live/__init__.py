"""Real-time updates: committed changes streamed to WebSocket and SSE clients."""
