"""The mail monitor kinds (smtp, imap, pop3) in the inventory file: accepted, and refused naming the field."""

import pytest

from monitor.catalog import spec_for
from monitor.errors import InventoryError
from monitor.inventory import parse_inventory
from monitor.models import Monitor
from probes import ImapSpec, Pop3Spec, SmtpSpec

MAIL = """\
servers:
  - name: mx1
    address: 127.0.0.1
monitors:
  - name: mx1-smtp
    kind: smtp
    target: mx1.example.com:587
    server: mx1
    username: monitor@example.com
    password: s3cret
    expect_banner: "^220 mx1"
  - name: mx1-imaps
    kind: imap
    target: mx1.example.com:993
    server: mx1
    cert_expiry_warn_days: 21
  - name: mx1-pop3
    kind: pop3
    target: mx1.example.com:110
    tls: none
"""


def test_a_mail_inventory_validates_each_kind_with_its_fields():
    inv, specs = parse_inventory(MAIL, "mail.yaml")
    assert [m.kind for m in inv.monitors] == ["smtp", "imap", "pop3"]
    assert specs[0]["username"] == "monitor@example.com" and specs[0]["expect_banner"] == "^220 mx1"
    assert specs[1] == {"cert_expiry_warn_days": 21.0, "target": "mx1.example.com:993", "timeout_s": 10.0}
    assert specs[2]["tls"] == "none"


def test_a_stored_mail_monitor_becomes_its_kinds_spec_again():
    inv, specs = parse_inventory(MAIL, "mail.yaml")
    built = []
    for entry, fields in zip(inv.monitors, specs, strict=True):
        fields = dict(fields)
        row = Monitor(name=entry.name, kind=entry.kind, target=fields.pop("target"),
                      timeout_s=fields.pop("timeout_s"), spec=fields)
        built.append(spec_for(row))
    assert [type(s) for s in built] == [SmtpSpec, ImapSpec, Pop3Spec]
    assert [s.tls_mode for s in built] == ["starttls", "implicit", "none"]
    assert built[0].password == "s3cret" and "s3cret" not in repr(built[0])


def _replace(old: str, new: str) -> str:
    assert old in MAIL
    return MAIL.replace(old, new, 1)


BAD = [
    ("unknown mail field", _replace("    cert_expiry_warn_days: 21\n", "    cert_expiry_warn_days: 21\n    ssl: on\n"),
     "monitors[1].ssl", "unknown field"),
    ("tls mode", _replace("tls: none", "tls: maybe"), "monitors[2].tls", "'starttls', 'implicit' or 'none'"),
    ("auth mechanism", _replace("    password: s3cret\n", "    password: s3cret\n    auth_mechanism: CRAM-MD5\n"),
     "monitors[0].auth_mechanism", "'auto', 'PLAIN' or 'LOGIN'"),
    ("password alone", _replace("    username: monitor@example.com\n", ""), "monitors[0]",
     "username and password go together"),
    ("credentials in clear", _replace("    tls: none\n", "    tls: none\n    username: a\n    password: b\n"),
     "monitors[2]", "only sent over TLS"),
    ("target without port", _replace("target: mx1.example.com:993", "target: mx1.example.com"),
     "monitors[1].target", "host:port"),
    ("bad banner regex", _replace('"^220 mx1"', '"(220"'), "monitors[0].expect_banner", "not a valid regex"),
]


@pytest.mark.parametrize("case, text, path, reason", BAD, ids=[b[0] for b in BAD])
def test_a_bad_mail_monitor_is_refused_naming_the_field(case, text, path, reason):
    with pytest.raises(InventoryError) as err:
        parse_inventory(text, "mail.yaml")
    assert err.value.path == path, str(err.value)
    assert reason in err.value.reason, str(err.value)
    assert "s3cret" not in str(err.value)
