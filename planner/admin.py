"""The admin, for Django's discovery: corpus curation and the Job admin (with the corpus import page) register here."""
from .corpus import admin as corpus_admin  # noqa: F401
from .jobs import admin as jobs_admin  # noqa: F401
