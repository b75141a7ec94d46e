"""Model runtimes and the model catalog."""
