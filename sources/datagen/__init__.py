"""``type = "datagen"``: generated change data, deterministic by seed, no server needed."""
