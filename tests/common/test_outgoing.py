import ipaddress
import socket
import time

import pytest

from apps.common.outgoing import (
    MAX_BODY_BYTES,
    OutgoingHostUnresolved,
    OutgoingUrlRefused,
    address_is_public,
    outgoing_get,
    outgoing_url_check,
)
from tests.common.http_receiver import Receiver


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def live_guard_on(settings):
    settings.OUTGOING_PRIVATE_ADDRESSES_IN_LIVE = False


# --- the URL check ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.example/ipn",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:25/",
        "//shop.example/ipn",
        "http:///ipn",
        "http://user:secret@shop.example/ipn",
        "https://token@shop.example/ipn",
        "http://shop.example:99999/ipn",
    ],
)
@pytest.mark.parametrize("livemode", [False, True])
def test_urls_that_are_not_plain_http_or_carry_credentials_are_refused_in_both_modes(url, livemode):
    with pytest.raises(OutgoingUrlRefused):
        outgoing_url_check(url, livemode=livemode)


NON_PUBLIC_URLS = [
    "http://127.0.0.1/ipn",
    "http://127.8.9.10:8080/ipn",
    "http://10.1.2.3/ipn",
    "http://172.16.5.4/ipn",
    "http://192.168.1.20/ipn",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/ipn",
    "http://0.0.0.0/ipn",
    "http://224.0.0.1/ipn",
    "http://240.0.0.1/ipn",
    "http://[::1]/ipn",
    "http://[::]/ipn",
    "http://[fe80::1]/ipn",
    "http://[fc00::1]/ipn",
    "http://[::ffff:127.0.0.1]/ipn",
    "http://[::ffff:10.0.0.1]/ipn",
    "http://[64:ff9b::a9fe:a9fe]/ipn",
    "http://2130706433/ipn",  # 127.0.0.1 written as one number
    "http://localhost/ipn",
    "http://localhost:8000/ipn",
]


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_live_mode_refuses_hosts_that_are_or_resolve_to_non_public_addresses(url, live_guard_on):
    with pytest.raises(OutgoingUrlRefused):
        outgoing_url_check(url, livemode=True)


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_test_mode_allows_local_and_private_hosts(url, live_guard_on):
    outgoing_url_check(url, livemode=False)


def test_live_mode_allows_private_hosts_when_the_setting_says_so(settings):
    settings.OUTGOING_PRIVATE_ADDRESSES_IN_LIVE = True

    outgoing_url_check("http://127.0.0.1/ipn", livemode=True)
    outgoing_url_check("http://localhost/ipn", livemode=True)


def test_live_mode_allows_a_public_address(live_guard_on):
    outgoing_url_check("https://93.184.215.14/ipn?pid=payment_1", livemode=True)
    outgoing_url_check("http://[2606:4700:4700::1111]:8443/ipn", livemode=True)


def test_a_host_name_that_resolves_to_nothing_is_unresolved_not_refused():
    with pytest.raises(OutgoingHostUnresolved):
        outgoing_url_check("https://no-such-host.invalid/ipn", livemode=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("93.184.215.14", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.31.255.255", False),
        ("192.168.0.1", False),
        ("169.254.0.1", False),
        ("100.64.0.1", False),
        ("198.18.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address to judge, not to bind)
        ("255.255.255.255", False),
        ("224.0.0.251", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
        ("::ffff:192.168.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:808:808::", True),  # 6to4 of 8.8.8.8
    ],
)
def test_which_addresses_are_public(address, public):
    assert address_is_public(ipaddress.ip_address(address)) is public


# --- the call --------------------------------------------------------------------------


def test_a_get_returns_status_latency_and_the_start_of_the_answer(receiver):
    receiver.status = 503
    receiver.body = b"busy " * 200

    response = outgoing_get(
        receiver.url("/ipn?pid=payment_1"),
        headers={"X-Test": "yes"},
        livemode=False,
        timeout=5,
    )

    assert response.status == 503
    assert not response.ok
    assert response.error == ""
    assert response.snippet == ("busy " * 200)[:500]
    assert 0 <= response.latency_ms < 5000
    assert receiver.requests[0].query == {"pid": ["payment_1"]}
    assert receiver.requests[0].headers["x-test"] == "yes"


def test_redirects_are_not_followed(receiver):
    receiver.status = 302
    receiver.headers = {"Location": "/elsewhere"}

    response = outgoing_get(receiver.url("/ipn"), headers={}, livemode=False, timeout=5)

    assert response.status == 302
    assert [request.path for request in receiver.requests] == ["/ipn"]


def test_an_endless_answer_is_read_up_to_64_kb_only(receiver):
    receiver.endless = True

    response = outgoing_get(receiver.url("/ipn"), headers={}, livemode=False, timeout=5)

    assert response.status == 200
    assert response.snippet == "x" * 500
    assert response.latency_ms < 5000
    assert MAX_BODY_BYTES == 64 * 1024


def test_a_server_that_never_answers_times_out(receiver):
    receiver.hold = True

    started = time.monotonic()
    response = outgoing_get(receiver.url("/ipn"), headers={}, livemode=False, timeout=0.5)

    assert response.status is None
    assert "Timeout" in response.error
    assert time.monotonic() - started < 3


def test_a_closed_port_is_a_connection_error_not_an_exception():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once the socket is closed

    response = outgoing_get(f"http://127.0.0.1:{port}/ipn", headers={}, livemode=False, timeout=2)

    assert response.status is None
    assert "Connect" in response.error


def test_an_unresolvable_host_is_an_error_to_retry_not_an_exception():
    response = outgoing_get(
        "http://no-such-host.invalid/ipn", headers={}, livemode=False, timeout=2
    )

    assert response.status is None
    assert "OutgoingHostUnresolved" in response.error


def test_live_mode_refuses_to_call_loopback(receiver, live_guard_on):
    with pytest.raises(OutgoingUrlRefused):
        outgoing_get(receiver.url("/ipn"), headers={}, livemode=True, timeout=2)

    assert receiver.requests == []


def test_the_call_goes_to_the_address_checked_and_names_the_host(receiver, monkeypatch):
    # A name whose DNS answer changes after the check (DNS rebinding) must not move the call:
    # the first answer is the one used, and the name is only resolved once.
    real_getaddrinfo = socket.getaddrinfo
    answers = []

    def rebinding_getaddrinfo(host, *args, **kwargs):
        if host != "shop.rebind.test":
            return real_getaddrinfo(host, *args, **kwargs)
        address = "127.0.0.1" if not answers else "10.255.255.1"
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, kwargs.get("port", 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)

    response = outgoing_get(
        receiver.url("/ipn", host="shop.rebind.test"), headers={}, livemode=False, timeout=3
    )

    assert response.status == 200
    assert answers == ["127.0.0.1"]
    assert receiver.requests[0].headers["host"] == f"shop.rebind.test:{receiver.port}"


def test_a_refusal_is_a_domain_error_with_a_stable_code():
    with pytest.raises(OutgoingUrlRefused) as refused:
        outgoing_url_check("ftp://shop.example/", livemode=True)

    assert refused.value.code == "outgoing_url_refused"
    assert refused.value.message
