from rest_framework import permissions


class IsStaff(permissions.BasePermission):
    """Changes to the shared corpus are for curators (staff), like in the admin."""

    message = "Only staff users may import corpus files."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_staff)


class IsJobOwnerOrStaff(permissions.BasePermission):
    message = "This job belongs to another user."

    def has_object_permission(self, request, view, obj):
        return request.user.is_staff or (obj.created_by_id is not None and obj.created_by_id == request.user.pk)
