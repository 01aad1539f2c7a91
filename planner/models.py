"""The app's models, for Django's discovery; each lives in its domain package (migrations: planner/migrations)."""
from .corpus.models import Arch, Family, Observation, Run, Split
from .errormodels.models import ErrorModelArtifact, SweepRow
from .jobs.models import Job

__all__ = ["Arch", "ErrorModelArtifact", "Family", "Job", "Observation", "Run", "Split", "SweepRow"]
