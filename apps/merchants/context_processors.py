def current_merchant(request):
    """The dashboard's merchant for templates (set by views.merchant_required)."""
    membership = getattr(request, "membership", None)
    return {
        "membership": membership,
        "current_merchant": membership.merchant if membership else None,
    }
