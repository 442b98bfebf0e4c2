"""HTTPS glue for the web server: the ssl context, and the small page that offers the local CA.

The page (trust.html) is static HTML with no script (the content security policy
allows none inline): the CA certificate to download, its SHA-256 fingerprint to
compare with the one the terminal printed, and how to trust it on each kind of
headset and browser. Certificates themselves are made in twinview.security.tls.
"""

from __future__ import annotations

import html
import ssl
from pathlib import Path

from twinview.security.tls import ServerTls, ca_der

TRUST_PAGE = "trust.html"
CA_CRT = "twinview-ca.crt"  # DER: what Android and Apple devices install
CA_PEM = "twinview-ca.pem"  # PEM: desktop browsers, certutil, Firefox


def ssl_context(tls: ServerTls) -> ssl.SSLContext:
    """A server context for this certificate: TLS 1.2 or newer, HTTP/1.1 only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def trust_files(tls: ServerTls | None) -> dict[str, bytes]:
    """trust.html, plus the CA certificate (DER and PEM) when this server made its own."""
    files: dict[str, bytes] = {TRUST_PAGE: trust_page(tls)}
    if tls is not None and tls.ca is not None:
        files[CA_CRT] = ca_der(tls.ca)
        files[CA_PEM] = Path(tls.ca).read_bytes()
    return files


_STYLE = """<style>
body { font: 16px/1.45 system-ui, sans-serif; max-width: 46em; margin: 1.5em auto; padding: 0 1em; color: #1d2430; }
code, .fp { font-family: ui-monospace, monospace; font-size: 0.92em; overflow-wrap: anywhere; }
.fp { background: #eef2f6; padding: 0.5em; display: block; }
a.button { display: inline-block; padding: 0.6em 1em; margin: 0.3em 0.5em 0.3em 0; border-radius: 6px;
  background: #1f5fbf; color: #fff; text-decoration: none; min-height: 44px; box-sizing: border-box; }
h2 { margin-top: 1.6em; font-size: 1.15em; }
li { margin: 0.3em 0; }
</style>"""


def trust_page(tls: ServerTls | None) -> bytes:
    e = html.escape
    if tls is None:
        body = """<h1>This page is served over plain HTTP</h1>
<p>Headsets enter VR or AR only from an https page (or from localhost). Start the server with
<code>twinview serve SITE --tls --host 0.0.0.0</code> and open the https address it prints.</p>"""
    elif tls.ca is None:
        body = f"""<h1>Certificate of this server</h1>
<p>This server uses a certificate its operator supplied (<code>--cert</code>). If your browser warns about it,
ask them for the certificate authority that issued it. SHA-256 of the server certificate:</p>
<p class="fp">{e(tls.fingerprint)}</p>"""
    else:
        body = f"""<h1>Trust this twinview server</h1>
<p>This server made its own certificate authority (CA). Trust it once on each headset or computer; after that,
this server's pages open without a warning and can enter VR and AR.</p>
<p><a class="button" href="{CA_CRT}">Download the CA certificate</a>
<a class="button" href="{CA_PEM}">PEM version (desktop, Firefox)</a></p>
<p>Before trusting it, check that its SHA-256 fingerprint is the one the server printed in its terminal:</p>
<p class="fp">{e(tls.ca_fingerprint)}</p>
<p>The CA may only certify this machine's names and addresses, local names (<code>.local</code>,
<code>.lan</code>, <code>.home.arpa</code>, <code>.internal</code>) and private addresses: trusting it
does not let it vouch for any other web site.</p>

<h2>Meta Quest</h2>
<p>The Quest's settings have no place to add a certificate authority. Open this server's https address in the
Meta Quest Browser, choose <em>Advanced</em> and then <em>Proceed</em> after checking that the certificate's
fingerprint is the one above; the page can then enter VR. With developer mode you can instead install the
CA through Android's settings as on other Android devices.</p>

<h2>Apple Vision Pro (Safari)</h2>
<ol>
<li>Download the CA certificate above and allow the configuration profile.</li>
<li>Settings, General, VPN &amp; Device Management: open the twinview profile and install it.</li>
<li>Settings, General, About, Certificate Trust Settings: turn on full trust for the twinview local CA.</li>
</ol>

<h2>Android (Chrome)</h2>
<ol>
<li>Download the CA certificate above.</li>
<li>Settings, Security (or Security &amp; privacy), More security settings, Encryption &amp; credentials,
Install a certificate, CA certificate; pick <code>{CA_CRT}</code> from Downloads.</li>
<li>Reopen this server's https address in Chrome.</li>
</ol>

<h2>Desktop browsers</h2>
<ul>
<li><strong>Chrome, Edge on Windows:</strong> open the downloaded <code>{CA_CRT}</code>, Install Certificate,
Current User, place it in <em>Trusted Root Certification Authorities</em>.</li>
<li><strong>macOS (Safari, Chrome):</strong> open it in Keychain Access, add it to the login keychain, then in its
Trust settings choose <em>Always Trust</em> for SSL.</li>
<li><strong>Chrome or Chromium on Linux:</strong> <code>certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n twinview
-i {CA_PEM}</code> (package libnss3-tools), or chrome://certificate-manager, Local certificates, Import.</li>
<li><strong>Firefox:</strong> Settings, Privacy &amp; Security, Certificates, View Certificates, Authorities,
Import <code>{CA_PEM}</code>, and tick <em>Trust this CA to identify websites</em>.</li>
</ul>
<p>Then reload. To stop trusting it, remove "twinview local CA" from the same place.</p>"""
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trust this twinview server</title>
<link rel="icon" href="data:,">
{_STYLE}
</head>
<body>
{body}
<p><a href="./">Back to the site</a></p>
</body>
</html>
"""
    return page.encode("utf-8")
