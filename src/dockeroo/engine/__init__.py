"""Engine layer: the docker CLI behind one process supervisor, typed errors, the inspect cache, engine selection and facts."""
