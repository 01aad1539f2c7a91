"""The corpus: Family -> Run -> Observation, its import, export, statistics, curation (admin), API and the ColPret converter."""
