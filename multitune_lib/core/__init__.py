"""The core: a run's configuration, the registries, the backbone interface, L2-SP and the trainer."""
