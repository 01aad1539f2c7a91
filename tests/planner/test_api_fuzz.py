"""schemathesis against the project's own OpenAPI schema, in process (the Django WSGI app).

Every operation of /api/v1/schema/ gets generated requests, valid (positive) and
invalid (negative) ones, each sent three times: anonymously, with a normal
user's token and with a staff token. Every response must be no 5xx and conform
to the schema: a documented status code, the documented content type, a body
that matches the response schema, and documented headers.

Fixed seed (derandomize) and bounded examples keep the run reproducible and
well under a minute on two CPUs. Jobs created by fuzzed POSTs are rows only: the
enqueue is replaced by a recorder (the broker is not what is tested here, and a
503 from an unreachable broker would count as a 5xx).
"""
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.transport.serialization import Binary
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from planner.models import Job
from tests.planner.plans.test_plans import REQUEST as PLAN_REQUEST
from tests.planner.plans.test_plans import error_model  # noqa: F401 (fixture)

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,  # an invalid request is refused with a 4xx, never accepted
]
# Per operation and generation mode; each case is sent once per role (3 roles).
MAX_EXAMPLES = 25
MIN_REQUESTS = 1000
PREDICTION_RUNS = [
    {"model": f"m-{n}", "params": n * 1e6, "tokens": t, "value": 2.0 + 300 / n ** 0.3 + 200 / (t / 1e9) ** 0.3}
    for n in (20, 60, 200) for t in (2e9, 5e9, 1e10, 2e10)
]


@pytest.fixture
def fuzz_world(corpus, owner, staff, error_model, monkeypatch, django_capture_on_commit_callbacks):  # noqa: F811
    """Data for the operations' real code paths: a corpus, an error model and finished jobs of each kind."""
    from django.core import signals
    from django.db import close_old_connections
    from rest_framework.throttling import ScopedRateThrottle

    from planner.jobs import services as jobs
    from planner.plans.services import plan_enqueue, plan_run
    from planner.predictions.services import prediction_enqueue, prediction_run

    sent = []
    monkeypatch.setattr(jobs, "_enqueue", sent.append)
    # As Django's test client does: the WSGI handler must not close the test's connection (and transaction).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # The throttles are tested elsewhere (test_throttling); here they would only turn cases into 429s.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {
        scope: "100000/hour" for scope in ScopedRateThrottle.THROTTLE_RATES})
    plan = plan_enqueue(data=PLAN_REQUEST, created_by=owner)
    prediction = prediction_enqueue(runs=PREDICTION_RUNS, target_params=1e9, target_tokens=[2e10, 4e10],
                                    coverage=0.8, created_by=owner)
    # The runners' results, stored as a worker would (the worker's progress thread needs committed rows).
    for job, runner in ((plan, plan_run), (prediction, prediction_run)):
        result = runner(job=job, progress=lambda *args: None)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, progress=1.0, result=result)
    failed = Job.objects.create(kind=Job.Kind.CORPUS_IMPORT, status=Job.Status.FAILED, created_by=owner,
                                input={"filename": "x.csv", "size": 3}, error="line 2: bad",
                                result={"n_problems": 1, "problems": [{"line": 2, "column": "value", "reason": "x"}]})
    sweep = Job.objects.create(kind=Job.Kind.SWEEP, created_by=staff, input={"families": None})
    queued = Job.objects.create(kind=Job.Kind.CORPUS_STATS, created_by=owner, input={"families": ["tiny"]})
    advice = Job.objects.create(kind=Job.Kind.ADVICE, created_by=owner, input={
        "prediction": prediction.pk, "target_params": 1e9, "target_tokens": 4e10, "budget_flops": 1e20, "max_runs": 1})
    yield {
        "jobs": [plan.pk, prediction.pk, failed.pk, sweep.pk, queued.pk, advice.pk],
        "plans": [plan.pk], "predictions": [prediction.pk], "sweeps": [sweep.pk], "advice": [advice.pk],
        "families": [corpus["tiny"].pk, corpus["other"].pk], "names": ["tiny", "other"],
        "sent": sent,
    }
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _fixed_path_values(operation, world):
    """Path parameters that hit stored objects, so cases reach past the 404."""
    path = operation.path
    if "{name}" in path:
        return {"name": world["names"]}
    if "{id}" not in path:
        return None
    if path.startswith("/api/v1/families/"):
        return {"id": world["families"]}
    for prefix in ("plans", "predictions", "sweeps", "advice"):
        if path.startswith(f"/api/v1/{prefix}/"):
            return {"id": world[prefix]}
    return {"id": world["jobs"]}


# One family's runs as a canonical CSV: uploads that get past the file's checks to the real work.
PREDICTION_CSV = ("family,model,arch,params,tokens,step,seed,dataset,epochs,flops,metric,value,split,source\n" + "".join(
    f"mine,{r['model']},dec,{int(r['params'])},{r['tokens']},,,,,,val_loss,{r['value']},validation,\n"
    for r in PREDICTION_RUNS)).encode()


def _with_real_file(case):
    """The generated case with a real CSV as its file, as an explicit case (its generation metadata no
    longer describes it, so the negative-data check, which reads that, does not apply)."""
    if not (isinstance(case.body, dict) and "file" in case.body):
        return case
    body = {k: v for k, v in case.body.items() if k != "metric"}  # a generated metric is not in the file
    return case.operation.Case(body={**body, "file": Binary(PREDICTION_CSV)}, media_type=case.media_type,
                               headers=dict(case.headers or {}), query=case.query)


def _strategy(operation, mode, world):
    fixed = _fixed_path_values(operation, world)
    generated = operation.as_strategy(generation_mode=mode)
    if mode == schemathesis.GenerationMode.POSITIVE:
        # The schema's own request examples (a 7B plan, runs as JSON): valid bodies that reach the real work.
        generated = st.one_of(generated, *operation.get_strategies_from_examples())
    if operation.path == "/api/v1/predictions/" and operation.method.upper() == "POST":
        # Generated bytes never parse as a corpus file; half the uploads carry a real one. (Imports need a
        # .csv name, which generated multipart parts lack: tests/planner/corpus/test_importing_fuzz.py fuzzes them.)
        upload = operation.as_strategy(generation_mode=mode, media_type="multipart/form-data").map(_with_real_file)
        return st.one_of(generated, upload)
    if not fixed:
        return generated
    (name, values), = fixed.items()
    stored = st.one_of(*(operation.as_strategy(generation_mode=mode, path_parameters={name: v}) for v in values))
    return st.one_of(generated, stored, stored)  # mostly stored objects


def test_every_operation_answers_without_5xx_and_as_documented(fuzz_world, owner, staff):
    from planner.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)
    roles = {"anonymous": {}, "user": {"Authorization": f"Token {owner.token}"},
             "staff": {"Authorization": f"Token {staff.token}"}}
    counts = {"requests": 0, "by_status": {}}
    failures = []
    accepted = set()  # operations that created a job: the fuzz reached past validation
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]

    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                      print_blob=False)
            @given(case=_strategy(operation, mode, fuzz_world))
            def fuzz(case):
                for role, headers in roles.items():
                    response = case.call(headers=headers)
                    counts["requests"] += 1
                    counts["by_status"][response.status_code] = counts["by_status"].get(response.status_code, 0) + 1
                    if response.status_code == 202:
                        accepted.update({operation.label, f"{operation.label} {case.media_type}"})
                    case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                fuzz()
            except Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body has no negative cases.
                if mode != schemathesis.GenerationMode.NEGATIVE:
                    failures.append(f"{operation.label} ({mode}): no case could be generated")
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all failures reported together
                failures.append(f"{operation.label} ({mode}): {exc}")

    seconds = time.monotonic() - started
    print(f"schemathesis: {counts['requests']} requests over {len(operations)} operations in {seconds:.1f} s; "
          f"statuses {dict(sorted(counts['by_status'].items()))}")
    assert not failures, "\n\n".join(failures)
    assert counts["requests"] >= MIN_REQUESTS
    assert {"POST /api/v1/plans/", "POST /api/v1/predictions/ multipart/form-data",
            "POST /api/v1/predictions/ application/json", "POST /api/v1/sweeps/"} <= accepted, accepted
    assert not [code for code in counts["by_status"] if code >= 500]
