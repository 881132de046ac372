"""Terminal UI, rich tables and plots."""
