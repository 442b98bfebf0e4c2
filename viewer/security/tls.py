"""HTTPS for headsets: a local certificate authority and a server certificate, made once.

WebXR needs a secure context, and browsers give one only to https pages (or
localhost). A headset on the network therefore needs a certificate it trusts for
the address it uses. `twinview serve --tls` makes, once per user:

- a local CA (ECDSA P-256, 10 years): ca.pem, and ca-key.pem readable by the
  user only. Its name constraints limit it to this machine's names and
  addresses, local names (localhost, *.local, *.lan, *.home.arpa, *.internal)
  and private address ranges: a headset that trusts it trusts nothing else
  that this CA could sign, even if its key were stolen.
- a server certificate (397 days: Apple devices refuse longer ones) signed by
  it for the names and addresses the server is reached by; remade when a name
  is missing, when it expires within 30 days, or when the CA changed.

Each device trusts the CA once (docs/web.md, "Trusting the certificate on a
headset"); new server certificates need no new trust. Everything lives in
$TWINVIEW_TLS_DIR, else $XDG_CONFIG_HOME/twinview/tls (~/.config/twinview/tls),
a folder only the user can open.

Model layer: the `cryptography` package only; no web server here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .files import write_private

TLS_ENV = "TWINVIEW_TLS_DIR"
CA_FILE, CA_KEY_FILE = "ca.pem", "ca-key.pem"
SERVER_FILE, SERVER_KEY_FILE = "server.pem", "server-key.pem"
CA_DAYS = 3650
SERVER_DAYS = 397  # Apple platforms refuse TLS server certificates valid longer than 825 days; browsers 398
RENEW_BEFORE_DAYS = 30

# Names and networks the CA may certify besides the machine's own (its name constraints).
LOCAL_DNS = ("localhost", "local", "lan", "home.arpa", "internal")
LOCAL_NETWORKS = (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
    "::1/128", "fc00::/7", "fe80::/10",
)  # fmt: skip


class TlsError(Exception):
    """A certificate or key cannot be made, read or used. The message is safe to show."""


@dataclass(frozen=True)
class ServerTls:
    """What a server needs to speak TLS, and what to tell people about it."""

    cert: Path  # PEM: server certificate (then the CA when generated)
    key: Path  # PEM private key
    ca: Path | None  # the local CA's certificate when generated here; None for a given certificate
    dns: tuple[str, ...]  # names the server certificate is valid for
    ips: tuple[str, ...]  # addresses the server certificate is valid for
    fingerprint: str  # SHA-256 of the server certificate (hex, colon separated)
    ca_fingerprint: str  # SHA-256 of the CA certificate, "" when not generated
    spki_sha256: str  # base64 SHA-256 of the server certificate's public key (Chromium's SPKI pin format)
    not_after: dt.datetime
    made: bool = False  # True when this call generated a new server certificate
    ca_made: bool = False  # True when this call generated a new CA


def default_tls_dir() -> Path:
    env = os.environ.get(TLS_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "twinview" / "tls"


# --- names ---------------------------------------------------------------------------------


def split_names(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) from host names or addresses, lower case, without duplicates."""
    dns: list[str] = []
    ips: list[str] = []
    for raw in names:
        name = str(raw).strip().strip("[]").rstrip(".").lower()
        if not name or name in ("0.0.0.0", "::", "*"):
            continue
        try:
            ip = str(ipaddress.ip_address(name))
        except ValueError:
            if name not in dns:
                dns.append(name)
        else:
            if ip not in ips:
                ips.append(ip)
    return dns, ips


def machine_names(bind_host: str = "") -> list[str]:
    """The names and addresses this machine is reached by: localhost, the host name (short and
    fully qualified, and NAME.local for mDNS), loopback, and the addresses of its network
    interfaces that reach other machines. With a specific bind address, that address too."""
    names = ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname().strip().lower()
    if host:
        names += [host, f"{host.split('.')[0]}.local"]
    try:
        fqdn = socket.getfqdn().strip().lower()
    except OSError:
        fqdn = ""
    if fqdn and "." in fqdn and not fqdn.startswith("localhost"):
        names.append(fqdn)
    names += local_addresses()
    if bind_host and bind_host not in ("0.0.0.0", "::", ""):
        names.append(bind_host)
    dns, ips = split_names(names)
    return dns + ips


def local_addresses() -> list[str]:
    """Non-loopback addresses of this machine (the ones a headset on the network would use)."""
    found: list[str] = []
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:  # the address the default route leaves from; a UDP connect sends nothing
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                found.append(s.getsockname()[0])
        except OSError:
            pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP):
            found.append(str(info[4][0]))
    except OSError:
        pass
    out = []
    for a in found:
        try:
            ip = ipaddress.ip_address(a.split("%")[0])
        except ValueError:
            continue
        if not ip.is_loopback and not ip.is_unspecified and not ip.is_link_local and str(ip) not in out:
            out.append(str(ip))
    return out


# --- files -----------------------------------------------------------------------------------


def _write(path: Path, data: bytes, mode: int) -> None:
    write_private(path, data, mode)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer at a time (two servers started together must not make two CAs)."""
    import fcntl

    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _prepare(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise TlsError(f"cannot use {folder} for certificates: {exc.strerror or exc}") from None
    return folder


# --- certificates ------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _fingerprint(cert) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def spki_sha256(cert) -> str:
    """base64 SHA-256 of a certificate's SubjectPublicKeyInfo (Chromium's --ignore-certificate-errors-spki-list)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _name_constraints(dns: Iterable[str], ips: Iterable[str]):
    from cryptography import x509

    permitted: list = []
    for name in dict.fromkeys([*LOCAL_DNS, *dns]):
        permitted.append(x509.DNSName(name))
    networks = [ipaddress.ip_network(n) for n in LOCAL_NETWORKS]
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        if not any(addr in n for n in networks):
            networks.append(ipaddress.ip_network(f"{addr}/{addr.max_prefixlen}"))
    permitted += [x509.IPAddress(n) for n in networks]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def _make_ca(dns: list[str], ips: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname() or "this machine"
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "twinview"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"twinview local CA ({host[:40]})"),
    ])  # fmt: skip
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )  # fmt: skip
        .add_extension(ski, critical=False)
        .add_extension(_name_constraints(dns, ips), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _permits(ca_cert, dns: Iterable[str], ips: Iterable[str]) -> list[str]:
    """Names and addresses the CA's name constraints do not allow (empty: all allowed)."""
    from cryptography import x509

    try:
        nc = ca_cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return []
    subtrees = nc.permitted_subtrees or []
    allowed_dns = [s.value.lower() for s in subtrees if isinstance(s, x509.DNSName)]
    allowed_nets = [s.value for s in subtrees if isinstance(s, x509.IPAddress)]
    refused = []
    for name in dns:
        if allowed_dns and not any(name == d or name.endswith("." + d) for d in allowed_dns):
            refused.append(name)
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        if allowed_nets and not any(addr.version == n.version and addr in n for n in allowed_nets):
            refused.append(ip)
    return refused


def _make_server(ca_cert, ca_key, dns: list[str], ips: list[str]):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    first = (dns or ips)[0]
    san = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _load_certs(path: Path) -> list:
    from cryptography import x509

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read certificate {path}: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        try:
            certs = [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise TlsError(f"{path} is not a PEM or DER certificate") from None
    return certs


def _load_key(path: Path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read key {path}: {exc.strerror or exc}") from None
    try:
        return load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{path} is not an unencrypted PEM private key ({exc})") from None


def _san(cert) -> tuple[list[str], list[str]]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return [d.lower() for d in san.get_values_for_type(x509.DNSName)], [
        str(i) for i in san.get_values_for_type(x509.IPAddress)
    ]


def _describe(cert_path: Path, key_path: Path, ca_path: Path | None, made: bool, ca_made: bool) -> ServerTls:
    certs = _load_certs(cert_path)
    leaf = certs[0]
    dns, ips = _san(leaf)
    ca_fp = _fingerprint(_load_certs(ca_path)[0]) if ca_path is not None else ""
    return ServerTls(
        cert_path, key_path, ca_path, tuple(dns), tuple(ips), _fingerprint(leaf), ca_fp, spki_sha256(leaf),
        leaf.not_valid_after_utc, made, ca_made,
    )  # fmt: skip


def ensure_ca(folder: Path | None = None, names: Iterable[str] = (), new: bool = False) -> tuple[Path, bool]:
    """The local CA's certificate file, made if there is none (or `new`); (path, made now)."""
    folder = _prepare(Path(folder) if folder is not None else default_tls_dir())
    try:
        with _locked(folder):
            return _ensure_ca(folder, names, new)
    except OSError as exc:
        raise TlsError(f"cannot write certificates in {folder}: {exc.strerror or exc}") from None


def _ensure_ca(folder: Path, names: Iterable[str], new: bool) -> tuple[Path, bool]:
    ca_path, key_path = folder / CA_FILE, folder / CA_KEY_FILE
    if not new and ca_path.is_file() and key_path.is_file():
        if key_path.stat().st_mode & 0o077:
            os.chmod(key_path, 0o600)  # only the user may read the CA key
        return ca_path, False
    dns, ips = split_names(names)
    cert, key = _make_ca(dns, ips)
    _write(key_path, _pem_key(key), 0o600)
    _write(ca_path, _pem_cert(cert), 0o644)
    for stale in (SERVER_FILE, SERVER_KEY_FILE):  # signed by the old CA
        try:
            (folder / stale).unlink()
        except FileNotFoundError:
            pass
    return ca_path, True


def ensure_server_cert(names: Iterable[str], folder: Path | None = None, new_ca: bool = False) -> ServerTls:
    """A server certificate for `names` (host names and addresses) signed by the local CA.

    Made once and reused while it covers every name, is valid for 30 more days and
    was signed by the current CA. Raises TlsError when the CA may not certify a
    name (its name constraints): make a new CA with new_ca=True, then trust it again.
    """
    folder = _prepare(Path(folder) if folder is not None else default_tls_dir())
    names = list(names)
    dns, ips = split_names(names)
    if not dns and not ips:
        raise TlsError("no host name or address to make a server certificate for")
    try:
        return _ensure_server_cert(folder, names, dns, ips, new_ca)
    except OSError as exc:
        raise TlsError(f"cannot write certificates in {folder}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:  # a damaged CA key
        raise TlsError(f"the local CA in {folder} is damaged ({exc}): make a new one with --new-ca") from None


def _ensure_server_cert(folder: Path, names: list[str], dns: list[str], ips: list[str], new_ca: bool) -> ServerTls:
    with _locked(folder):
        ca_path, ca_made = _ensure_ca(folder, names, new_ca)
        ca_cert = _load_certs(ca_path)[0]
        refused = _permits(ca_cert, dns, ips)
        if refused:
            raise TlsError(
                f"the local CA in {folder} may not certify {', '.join(refused)} (it is limited to the names and "
                "addresses this machine had when it was made, and private ones): make a new one with --new-ca "
                "and trust it again on each headset, or serve with your own --tls-cert/--tls-key"
            )
        cert_path, key_path = folder / SERVER_FILE, folder / SERVER_KEY_FILE
        if not ca_made and _server_still_good(cert_path, key_path, ca_cert, dns, ips):
            return _describe(cert_path, key_path, ca_path, False, False)
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        ca_key = load_pem_private_key((folder / CA_KEY_FILE).read_bytes(), password=None)
        cert, key = _make_server(ca_cert, ca_key, dns, ips)
        _write(key_path, _pem_key(key), 0o600)
        _write(cert_path, _pem_cert(cert) + _pem_cert(ca_cert), 0o644)
        return _describe(cert_path, key_path, ca_path, True, ca_made)


def _server_still_good(cert_path: Path, key_path: Path, ca_cert, dns: list[str], ips: list[str]) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        leaf = _load_certs(cert_path)[0]
        leaf.verify_directly_issued_by(ca_cert)
    except Exception:  # unreadable, or signed by another CA
        return False
    have_dns, have_ips = _san(leaf)
    if not set(dns) <= set(have_dns) or not set(ips) <= set(have_ips):
        return False
    return leaf.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_BEFORE_DAYS)


def given_cert(cert: str | Path, key: str | Path) -> ServerTls:
    """Check a certificate and key someone gave (--cert/--key): readable, matching, not expired."""
    cert_path, key_path = Path(cert), Path(key)
    certs = _load_certs(cert_path)
    key_obj = _load_key(key_path)
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    spki = lambda k: k.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # noqa: E731
    if spki(certs[0].public_key()) != spki(key_obj.public_key()):
        raise TlsError(f"the key {key_path} does not belong to the certificate {cert_path}")
    if certs[0].not_valid_after_utc <= _now():
        raise TlsError(f"the certificate {cert_path} expired on {certs[0].not_valid_after_utc:%Y-%m-%d}")
    return _describe(cert_path, key_path, None, False, False)


def ca_der(ca_path: Path) -> bytes:
    """The CA certificate in DER (what Android and Apple devices install from a .crt download)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return _load_certs(ca_path)[0].public_bytes(Encoding.DER)
