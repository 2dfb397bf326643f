"""A synthetic text-to-image world ("shapes") small enough to train a real teacher, a distilled student, an
estimator and an independent judge on two CPU cores, with no download."""
