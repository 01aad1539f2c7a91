"""Laws API: each family's fitted law, its backtest ARE and an interval for its largest size (public reads)."""
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import filters as drf_filters
from rest_framework import generics, permissions
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from ..api.base import Pagination, errors
from ..api.filters import FamilyFilter
from ..corpus.models import Family
from . import serializers as s
from .services import cached_laws, family_law

# OPT from the reference corpus (rounded), as this endpoint returned it.
LAW_EXAMPLE = {
    "version": 1,
    "family": "OPT",
    "primary_metric": "loss_from_ppl",
    "excluded_from_fitting": False,
    "data": {"n_rows": 142, "n_runs": 6, "sizes": [1.25e8, 1.3e9, 6.7e9, 1.3e10, 3.0e10, 1.75e11]},
    "law": {"available": True, "version": 1, "law": "data-constrained", "success": True, "message": "converged",
            "params": {"E": 0.00493, "A": 5.78, "alpha": 0.0412, "B": 21541.0, "beta": 0.427},
            "normalised": {"coef": [0.00493, 2.31, 0.476], "alpha": 0.0412, "beta": 0.427, "n0": 4.81e9, "d0": 7.88e10},
            "stderr": {"E": 1.98, "A": 0.148, "alpha": 0.0387, "B": 8273.0, "beta": 0.0174},
            "stats": {"n_points": 142, "n_sizes": 6, "n_token_values": 79, "rmse_log": 0.00941, "mae_log": 0.00431,
                      "max_abs_log": 0.313, "huber": 0.00134},
            "seconds": 0.014, "nfev": 1339, "n_rows_fitted": 142},
    "backtest": {"available": True, "are": 0.0109, "are_best_loss": 0.0582, "are_most_compute": 0.0637,
                 "scale_up": 5.83, "n_train_points": 112, "n_target_points": 10},
    "interval": {"available": True, "coverage": 0.8, "n_boot": 50, "target_params": 1.75e11, "target_tokens": 2.8e11,
                 "prediction": 2.298, "lower": 1.792, "upper": 2.947, "actual": 2.279, "actual_inside": True,
                 "relative_error": 0.0082},
    "computed_at": "2026-11-28T11:03:35+00:00",
}


class LawList(generics.ListAPIView):
    queryset = Family.objects.all()
    serializer_class = s.LawSummarySerializer
    pagination_class = Pagination
    permission_classes = [permissions.AllowAny]
    filterset_class = FamilyFilter
    filter_backends = [DjangoFilterBackend, drf_filters.SearchFilter]
    search_fields = ["name"]

    @extend_schema(
        summary="List families with a link to each one's law",
        description="Cheap: fitting happens per family at its own URL. A law already computed for the family's "
                    "current data is summarised here (cached, law_available, backtest_are).",
        responses={200: s.LawSummarySerializer, **errors(400)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        cached = cached_laws(page)
        items = []
        for family in page:
            law = cached.get(family.pk)
            backtest = (law or {}).get("backtest") or {}
            items.append({
                "family": family.name,
                "url": request.build_absolute_uri(reverse("api:law-detail", args=[family.name])),
                "arch": family.arch,
                "primary_metric": family.primary_metric,
                "n_sizes": (family.stats or {}).get("n_sizes"),
                "excluded_from_fitting": family.excluded_from_fitting,
                "cached": law is not None,
                "law_available": law["law"]["available"] if law else None,
                "backtest_are": backtest.get("are"),
            })
        return self.get_paginated_response(s.LawSummarySerializer(items, many=True).data)


class LawDetail(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="A family's fitted law, backtest ARE and interval for its largest size",
        description="Computed on first request (under a second on ColPret's families) and cached until the "
                    "family's data or curation changes. A part that cannot be computed (too few sizes, a failed "
                    "fit) has available=false and a reason.",
        responses={200: s.FamilyLawSerializer, **errors(404)},
        examples=[OpenApiExample("OPT", value=LAW_EXAMPLE, response_only=True)],
    )
    def get(self, request, name):
        family = Family.objects.filter(name=name).first()
        if family is None:
            raise NotFound(f"No family named {name!r}.")
        return Response(family_law(family))
