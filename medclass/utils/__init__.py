"""Small helpers shared by several rooms: atomic file writes, logging set-up."""
