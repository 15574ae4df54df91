"""One sender per channel kind; each turns a `Notification` into one outbound request."""
