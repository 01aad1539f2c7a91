from rest_framework import permissions


class IsStaff(permissions.BasePermission):
    """Changes to the shared corpus are for curators (staff), like in the admin.

    The refusal names what the view does (its ``staff_only``, e.g. "import corpus files").
    """

    def has_permission(self, request, view):
        self.message = f"Only staff users may {getattr(view, 'staff_only', 'do this')}."
        return bool(request.user and request.user.is_staff)


class IsJobOwnerOrStaff(permissions.BasePermission):
    """A second guard: the views' querysets already hide other users' jobs (a 404, like a missing one)."""

    message = "This job belongs to another user."

    def has_object_permission(self, request, view, obj):
        return request.user.is_staff or (obj.created_by_id is not None and obj.created_by_id == request.user.pk)
