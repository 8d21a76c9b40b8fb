"""The terminal API (placeholder: being written)."""

from rest_framework.views import APIView


class _Todo(APIView):
    authentication_classes = []
    permission_classes = []
    schema = None


SessionsView = SessionView = SessionCancelView = SessionTicketsView = _Todo
SessionTicketView = TerminalView = _Todo
