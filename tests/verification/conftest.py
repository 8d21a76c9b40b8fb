import pytest

from tests.verification.gateways import PATH, RecordingSmsGateway


@pytest.fixture
def sms_provider(settings):
    """The SMS provider in use, recording every message handed to it."""
    settings.SMS_GATEWAY = PATH
    RecordingSmsGateway.handed = []
    yield RecordingSmsGateway
    RecordingSmsGateway.handed = []
