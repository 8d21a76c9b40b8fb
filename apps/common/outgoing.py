"""Outgoing HTTP to addresses merchants give us (IPN callbacks): checked, pinned, bounded.

A merchant chooses the URL Tranche calls, so the call must not become a way into our own
network (SSRF). ``outgoing_url_check`` refuses URLs that are not plain http(s), that carry
credentials, and, in live mode, hosts that are or resolve to an address that is not public
(private, loopback, link-local, multicast, reserved, unspecified, shared/CGNAT, and IPv6
forms that embed one of those: IPv4-mapped, NAT64, 6to4, Teredo). Test mode may call
anything, so a developer can receive IPNs on their own machine; so may live mode when
``OUTGOING_PRIVATE_ADDRESSES_IN_LIVE`` is on (development settings).

``outgoing_get`` resolves the host once, checks every address it got, and connects to the
checked address itself (the URL's host goes in the ``Host`` header and, for https, in the
TLS SNI and certificate check), so a DNS answer that changes between the check and the
request (DNS rebinding) cannot redirect the call. Redirects are not followed, environment
proxies are ignored (a proxy would resolve the name again), and at most 64 KB of the
response is read within the timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from django.conf import settings

from apps.common.errors import DomainError

MAX_BODY_BYTES = 64 * 1024
SNIPPET_CHARS = 500
ERROR_CHARS = 200
CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Public-looking prefixes that carry an IPv4 address inside an IPv6 one.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
# Not flagged by the ipaddress module's is_* properties in every Python version.
EXTRA_NON_PUBLIC = (
    ipaddress.ip_network("100.64.0.0/10"),  # shared address space (carrier-grade NAT)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
)


class OutgoingUrlRefused(DomainError):
    code = "outgoing_url_refused"
    http_status = 422
    default_message = "This URL cannot be called."


class OutgoingHostUnresolved(DomainError):
    """The host has no address right now: a transient failure, unlike a refusal."""

    code = "outgoing_host_unresolved"
    http_status = 422
    default_message = "The URL's host name could not be resolved."


@dataclass(frozen=True)
class OutgoingResponse:
    """How a call went: ``status`` is None when no HTTP answer came (then ``error`` says why)."""

    status: int | None
    latency_ms: int
    snippet: str
    error: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class _Target:
    parts: SplitResult
    host: str  # as in the URL, without brackets
    port: int
    addresses: tuple[IPAddress, ...]


def address_is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (not ours, not anyone's local network).

    IPv6 addresses that carry an IPv4 address (IPv4-mapped, NAT64) are judged by it; 6to4 and
    Teredo ones must be public both themselves and for the address they embed.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_is_public(address.ipv4_mapped)
        if address in NAT64_PREFIX:
            return address_is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        embedded = [address.sixtofour, address.teredo[1] if address.teredo else None]
        if any(inner is not None and not address_is_public(inner) for inner in embedded):
            return False
    if (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in network for network in EXTRA_NON_PUBLIC if network.version == 4)
    ):
        return False
    return address.is_global


def _parse(url: str) -> tuple[SplitResult, str, int]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise OutgoingUrlRefused("The URL is malformed.") from error
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise OutgoingUrlRefused("Only http and https URLs can be called.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutgoingUrlRefused("The URL must not contain credentials.")
    host = parts.hostname or ""
    if not host:
        raise OutgoingUrlRefused("The URL has no host.")
    return parts, host, port or DEFAULT_PORTS[parts.scheme.lower()]


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OutgoingHostUnresolved(f"The host {host!r} could not be resolved.") from error
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # Zone ids ("fe80::1%eth0") are not part of the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutgoingHostUnresolved(f"The host {host!r} has no address.")
    return tuple(addresses)


def _private_addresses_allowed(*, livemode: bool) -> bool:
    return not livemode or settings.OUTGOING_PRIVATE_ADDRESSES_IN_LIVE


def _target(url: str, *, livemode: bool) -> _Target:
    parts, host, port = _parse(url)
    addresses = _resolve(host, port)
    # Every answer must be public: a name that also resolves to a private address could be
    # steered there by whoever controls its DNS.
    if not _private_addresses_allowed(livemode=livemode) and not all(
        address_is_public(address) for address in addresses
    ):
        raise OutgoingUrlRefused(
            "The URL's host is a private, local or reserved address; live mode only calls "
            "public addresses."
        )
    return _Target(parts=parts, host=host, port=port, addresses=addresses)


def outgoing_url_check(url: str, *, livemode: bool) -> None:
    """Raise OutgoingUrlRefused if Tranche must not call ``url`` in this mode (see the module
    docstring), or OutgoingHostUnresolved if its host has no address at the moment."""
    _target(url, livemode=livemode)


def _pinned_url(target: _Target, address: IPAddress) -> str:
    literal = f"[{address}]" if address.version == 6 else str(address)
    explicit_port = target.parts.port is not None
    netloc = f"{literal}:{target.port}" if explicit_port else literal
    return urlunsplit(target.parts._replace(netloc=netloc, fragment=""))


def _host_header(target: _Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.parts.port}" if target.parts.port is not None else host


def _short(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:ERROR_CHARS]


def outgoing_get(
    url: str, *, headers: dict[str, str], livemode: bool, timeout: float
) -> OutgoingResponse:
    """GET ``url`` once, safely (see the module docstring).

    Raises OutgoingUrlRefused when the URL may not be called; every other failure (no DNS
    answer, no connection, timeout, broken response) comes back as a response with ``error``
    set and no status, for the caller to retry.
    """
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = _target(url, livemode=livemode)
    except OutgoingHostUnresolved as error:
        return OutgoingResponse(
            status=None, latency_ms=elapsed_ms(), snippet="", error=_short(error)
        )

    # Identity encoding and raw reads: a compressed body could expand far past the cap.
    request_headers = {**headers, "Accept-Encoding": "identity", "Host": _host_header(target)}
    extensions = {}
    if target.parts.scheme.lower() == "https":
        try:
            ipaddress.ip_address(target.host)
        except ValueError:
            # Connect to the pinned address, but present and verify the name.
            extensions["sni_hostname"] = target.host
    limits = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS))
    last_error = ""
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=limits) as client:
        for address in target.addresses:
            if last_error and time.monotonic() >= started + timeout:
                break  # no time left to try another address
            try:
                with client.stream(
                    "GET",
                    _pinned_url(target, address),
                    headers=request_headers,
                    extensions=extensions,
                ) as response:
                    body = _read_capped(response, deadline=started + timeout)
                    return OutgoingResponse(
                        status=response.status_code,
                        latency_ms=elapsed_ms(),
                        snippet=_text(body, response.charset_encoding)[:SNIPPET_CHARS],
                        error="",
                    )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                last_error = _short(error)  # the next address may answer
            except httpx.TimeoutException as error:
                return OutgoingResponse(
                    status=None, latency_ms=elapsed_ms(), snippet="", error=_short(error)
                )
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                return OutgoingResponse(
                    status=None, latency_ms=elapsed_ms(), snippet="", error=_short(error)
                )
    return OutgoingResponse(status=None, latency_ms=elapsed_ms(), snippet="", error=last_error)


def _text(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset nobody knows
        return body.decode("utf-8", errors="replace")


def _read_capped(response: httpx.Response, *, deadline: float) -> bytes:
    """At most MAX_BODY_BYTES of the body, and nothing after the deadline: a server that
    drips bytes or sends gigabytes costs us neither time nor memory."""
    body = bytearray()
    for chunk in response.iter_raw():
        body.extend(chunk)
        if len(body) >= MAX_BODY_BYTES or time.monotonic() > deadline:
            break
    return bytes(body[:MAX_BODY_BYTES])
