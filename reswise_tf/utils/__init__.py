"""Plain helpers every stage shares, one per job: argument checks, atomic file writes, number
formatting. Nothing here knows about models, data or TensorFlow."""
