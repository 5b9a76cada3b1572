"""Runtime layer: the Run (lock, signals, journal), the recipe base class, creation ahead, temporary containers."""
