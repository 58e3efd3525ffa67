"""Training and evaluation jobs that write versioned models into the model store."""
