"""The corpus: Family -> Run -> Observation; import, export, statistics, curation, API, the ColPret converter."""
