"""Corpus curation in the Django admin: staff only, actions, filters, summaries."""
import io

import pytest
from django.urls import reverse

from fits.canonical import read_canonical
from planner.corpus.admin import NOT_COMPUTED
from planner.models import Family, Observation
from planner.corpus.stats import families_refresh_stats

ACTION = "_selected_action"


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def plain_staff_client(client, django_user_model):
    """Staff but not superuser: needs model permissions, which curators are given."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("curator", password="pw-curator", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="planner"))
    client.force_login(user)
    return client


def changelist(model):
    return reverse(f"admin:planner_{model}_changelist")


@pytest.mark.parametrize("model", ["family", "run", "observation"])
def test_it_redirects_anonymous_users_to_the_login(client, corpus, model):
    response = client.get(changelist(model))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_it_redirects_non_staff_users_to_the_login(client, corpus, owner):
    client.force_login(owner)
    response = client.get(changelist("family"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("model,query", [
    ("family", ""), ("family", "?arch__exact=dec"), ("family", "?excluded_from_fitting__exact=1"),
    ("family", "?q=tiny"),
    ("run", ""), ("run", "?q=tiny-50m"), ("run", "?arch__exact=dec"), ("run", "?size=lt100m"),
    ("run", "?size=ge100b"), ("run", "?family__id__exact=1"),
    ("observation", ""), ("observation", "?metric=val_loss"), ("observation", "?split__exact=train"),
    ("observation", "?q=tiny"),
])
def test_changelists_with_filters_render(staff_client, corpus, model, query):
    response = staff_client.get(changelist(model) + query)
    assert response.status_code == 200


def test_the_size_filter_buckets_runs_by_params(staff_client, corpus):
    response = staff_client.get(changelist("run") + "?size=lt100m")
    names = [run.name for run in response.context["cl"].result_list]
    assert sorted(names) == ["tiny-10m", "tiny-50m", "tiny-50m"]
    response = staff_client.get(changelist("run") + "?size=1b-10b")
    assert [run.name for run in response.context["cl"].result_list] == ["other-1b"]


def test_the_family_page_shows_runs_and_not_computed_summaries(staff_client, corpus):
    tiny = corpus["tiny"]
    response = staff_client.get(reverse("admin:planner_family_change", args=[tiny.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert NOT_COMPUTED in html and "tiny-50m" in html


def test_the_family_page_renders_the_computed_summary(staff_client, corpus):
    tiny = corpus["tiny"]
    families_refresh_stats(family_ids=[tiny.pk])
    response = staff_client.get(reverse("admin:planner_family_change", args=[tiny.pk]))
    html = response.content.decode()
    assert NOT_COMPUTED not in html
    assert "2 distinct: 10M, 50M" in html  # sizes
    assert "min 1, median 2, max 3" in html  # val_loss checkpoints per run
    assert "2.9 – 4" in html  # primary-metric range
    assert "1e+09 – 2e+10" not in html and "1e+09 – 4e+09" in html  # tokens of this family only


def test_the_run_inline_is_read_only_with_observation_counts(staff_client, corpus):
    response = staff_client.get(reverse("admin:planner_family_change", args=[corpus["tiny"].pk]))
    inline = response.context["inline_admin_formsets"][0]
    assert set(inline.formset.form.base_fields) == set()  # nothing editable
    counts = {r.name + r.seed: r.n_obs for r in inline.formset.queryset}
    assert counts == {"tiny-10m": 4, "tiny-50m": 2, "tiny-50m1": 1}


def test_exclude_and_include_actions(staff_client, corpus):
    tiny = corpus["tiny"]
    staff_client.post(changelist("family"), {"action": "exclude_from_fitting", ACTION: [tiny.pk]})
    assert Family.objects.get(pk=tiny.pk).excluded_from_fitting
    staff_client.post(changelist("family"), {"action": "include_in_fitting", ACTION: [tiny.pk, corpus["other"].pk]})
    assert not Family.objects.filter(excluded_from_fitting=True).exists()


def test_the_actions_need_permission(client, corpus, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)
    response = client.post(changelist("family"), {"action": "exclude_from_fitting", ACTION: [corpus["tiny"].pk]})
    assert response.status_code == 403
    assert not Family.objects.get(pk=corpus["tiny"].pk).excluded_from_fitting


def test_set_primary_metric_shows_a_form_with_the_family_metrics(plain_staff_client, corpus):
    tiny = corpus["tiny"]
    response = plain_staff_client.post(changelist("family"), {"action": "set_primary_metric", ACTION: [tiny.pk]})
    assert response.status_code == 200
    choices = [value for value, _ in response.context["form"].fields["metric"].choices]
    assert choices == ["train_loss", "val_loss"]


def test_set_primary_metric_applies_the_choice(plain_staff_client, corpus):
    tiny = corpus["tiny"]
    response = plain_staff_client.post(changelist("family"), {
        "action": "set_primary_metric", ACTION: [tiny.pk], "apply": "1", "metric": "train_loss"})
    assert response.status_code == 302
    assert Family.objects.get(pk=tiny.pk).primary_metric == "train_loss"


def test_set_primary_metric_refuses_a_metric_the_family_lacks(plain_staff_client, corpus):
    tiny = corpus["tiny"]
    response = plain_staff_client.post(changelist("family"), {
        "action": "set_primary_metric", ACTION: [tiny.pk], "apply": "1", "metric": "accuracy"})
    assert response.status_code == 200 and response.context["form"].errors
    assert Family.objects.get(pk=tiny.pk).primary_metric == "val_loss"


def test_set_primary_metric_wants_exactly_one_family(staff_client, corpus):
    response = staff_client.post(changelist("family"), {
        "action": "set_primary_metric", ACTION: [corpus["tiny"].pk, corpus["other"].pk]}, follow=True)
    assert "exactly one family" in response.content.decode()


def test_export_action_downloads_canonical_csv_of_the_selection(staff_client, corpus):
    response = staff_client.post(changelist("family"), {"action": "export_csv", ACTION: [corpus["tiny"].pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="scaleplan-tiny.csv"' in response["Content-Disposition"]
    frame, _ = read_canonical(io.StringIO(response.content.decode()))
    assert set(frame["family"]) == {"tiny"} and len(frame) == Observation.objects.filter(run__family__name="tiny").count()
