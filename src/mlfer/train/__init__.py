"""Training, evaluation, feature caching and run configuration."""
