"""The dashboard's virtual terminal and terminals page (placeholder: being written)."""

from django.http import HttpResponse


def _todo(request, **kwargs):
    return HttpResponse(status=501)


virtual_terminal = session_detail = session_status = session_cancel = ticket_pdf = _todo
terminal_list = terminal_revoke = _todo
