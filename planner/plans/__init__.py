"""Plans: a target and a budget in, the small models to train out (form, page, plots, API), as jobs."""
