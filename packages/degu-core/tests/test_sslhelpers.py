"""Tests for degu.sslhelpers: the openssl-CLI throw-away PKI."""

import base64
import os
import stat
import subprocess

import pytest

from degu import sslhelpers
from degu.sslhelpers import (
    DAYS,
    PKI,
    b32enc,
    create_ca,
    create_csr,
    create_ec_key,
    create_key,
    get_cert_pubkey,
    get_csr_pubkey,
    get_pubkey,
    hash_pubkey,
    issue_cert,
    make_alt_names,
    make_subject,
    random_id,
    safe_write,
)

# The smallest key the API allows keeps these tests quick; TempPKI's tests
# cover the 2048-bit default.
BITS = 1024
TIMEOUT = 30


def openssl(*args, stdin=b""):
    return subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, timeout=TIMEOUT
    )


def key_bits(key_data):
    text = openssl("pkey", "-noout", "-text", stdin=key_data).stdout.decode()
    first = text.splitlines()[0]
    return int(first.split("(")[1].split()[0])


def subject_of(cert_file):
    out = openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", cert_file)
    return out.stdout.decode().strip()


def verify_strict(ca_file, cert_file):
    return openssl("verify", "-x509_strict", "-CAfile", ca_file, cert_file)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A PKI with one CA and one certificate it signed (1024-bit keys)."""
    p = PKI(str(tmp_path_factory.mktemp("pki")))
    ca_id = p.create_key(BITS)
    p.create_ca(ca_id)
    cert_id = p.create_key(BITS)
    p.create_csr(cert_id)
    p.issue_cert(cert_id, ca_id)
    return p, ca_id, cert_id


def test_DAYS_is_ten_years():
    assert DAYS == 3650


def test_safe_write_creates_read_only_file(tmp_path):
    filename = str(tmp_path / "secret")
    assert safe_write(filename, b"data") is None
    with open(filename, "rb") as f:
        assert f.read() == b"data"
    assert stat.S_IMODE(os.stat(filename).st_mode) == 0o400


def test_safe_write_refuses_existing_file(tmp_path):
    filename = str(tmp_path / "exists")
    with open(filename, "wb") as f:
        f.write(b"old")
    with pytest.raises(FileExistsError):
        safe_write(filename, b"new")
    with open(filename, "rb") as f:
        assert f.read() == b"old"


def test_b32enc_matches_rfc4648_vector():
    assert b32enc(b"fooba") == "MZXW6YTB"
    data = bytes(range(60))
    assert b32enc(data) == base64.b32encode(data).decode()


@pytest.mark.parametrize("size", [5, 10, 55, 60])
def test_b32enc_accepts_lengths_5_to_60_in_steps_of_5(size):
    assert len(b32enc(b"x" * size)) == size * 8 // 5


@pytest.mark.parametrize("size", [0, 4, 61, 65])
def test_b32enc_rejects_length_out_of_range(size):
    with pytest.raises(ValueError) as e:
        b32enc(b"x" * size)
    assert str(e.value) == f"need 5 <= len(data) <= 60; got {size}"


@pytest.mark.parametrize("size", [6, 9, 59])
def test_b32enc_rejects_length_not_multiple_of_5(size):
    with pytest.raises(ValueError) as e:
        b32enc(b"x" * size)
    assert str(e.value) == f"len(data) must be a multiple of 5; got {size}"


@pytest.mark.parametrize("bad", [bytearray(b"fooba"), "fooba", None])
def test_b32enc_needs_bytes(bad):
    with pytest.raises(TypeError) as e:
        b32enc(bad)
    assert str(e.value) == f"data: need a {bytes!r}; got a {type(bad)!r}: {bad!r}"


def test_random_id_default_is_24_chars_and_random():
    ids = {random_id() for _ in range(10)}
    assert len(ids) == 10
    for rid in ids:
        assert len(rid) == 24
        assert base64.b32decode(rid)


@pytest.mark.parametrize(("numbytes", "length"), [(5, 8), (30, 48), (60, 96)])
def test_random_id_numbytes(numbytes, length):
    assert len(random_id(numbytes)) == length
    assert len(random_id(numbytes=numbytes)) == length


def test_random_id_rejects_bad_numbytes():
    with pytest.raises(ValueError) as e:
        random_id(65)
    assert str(e.value) == "need 5 <= numbytes <= 60; got 65"
    with pytest.raises(ValueError) as e:
        random_id(16)
    assert str(e.value) == "numbytes must be a multiple of 5; got 16"
    with pytest.raises(TypeError) as e:
        random_id(True)
    assert str(e.value) == f"numbytes: need a {int!r}; got a {bool!r}: True"


def test_hash_pubkey_spec_example():
    assert (
        hash_pubkey(b"The PEM encoded public key")
        == "6RK4BB3YAIHDDJNOFOABZDS4WNEESGEW6LBRPH6AQETUNOMG"
    )


def test_hash_pubkey_needs_bytes():
    with pytest.raises(TypeError) as e:
        hash_pubkey("text")
    assert str(e.value) == f"pubkey_data: need a {bytes!r}; got a {str!r}: 'text'"


def test_make_subject():
    assert make_subject("FOO") == "/CN=FOO"
    with pytest.raises(TypeError) as e:
        make_subject(b"FOO")
    assert str(e.value) == f"cn: need a {str!r}; got a {bytes!r}: b'FOO'"


def test_create_key_makes_rsa_key_of_given_size():
    key_data = create_key(BITS)
    assert key_data.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert key_bits(key_data) == BITS
    assert create_key(BITS) != key_data


@pytest.mark.parametrize("bits", [512, 1023, 2047, 8192, 0, -2048])
def test_create_key_rejects_unsupported_bits(bits):
    with pytest.raises(ValueError) as e:
        create_key(bits)
    assert str(e.value) == f"bits must be one of (1024, 2048, 3072, 4096); got {bits}"


@pytest.mark.parametrize("bits", [2048.0, "2048", True, None])
def test_create_key_rejects_non_int_bits(bits):
    with pytest.raises(TypeError) as e:
        create_key(bits)
    assert str(e.value) == f"bits: need a {int!r}; got a {type(bits)!r}: {bits!r}"


def test_module_functions_make_a_valid_chain(tmp_path):
    ca_key = str(tmp_path / "ca.key")
    safe_write(ca_key, create_key(BITS))
    ca_file = str(tmp_path / "ca.pem")
    safe_write(ca_file, create_ca(ca_key, "/CN=TheCA"))
    key_file = str(tmp_path / "leaf.key")
    safe_write(key_file, create_key(BITS))
    csr_data = create_csr(key_file, "/CN=TheLeaf")
    assert csr_data.startswith(b"-----BEGIN CERTIFICATE REQUEST-----\n")
    csr_file = str(tmp_path / "leaf.csr")
    safe_write(csr_file, csr_data)
    srl_file = str(tmp_path / "ca.srl")
    assert not os.path.exists(srl_file)
    cert_data = issue_cert(csr_file, ca_file, ca_key, srl_file)
    assert cert_data.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert os.path.exists(srl_file)
    cert_file = str(tmp_path / "leaf.pem")
    safe_write(cert_file, cert_data)

    result = verify_strict(ca_file, cert_file)
    assert result.returncode == 0, result.stderr
    assert subject_of(cert_file) == "subject=CN=TheLeaf"
    assert subject_of(ca_file) == "subject=CN=TheCA"
    # SHA-384 signatures, DAYS of validity.
    text = openssl("x509", "-noout", "-text", "-in", cert_file).stdout.decode()
    assert "sha384WithRSAEncryption" in text
    for days, expired in ((DAYS - 1, 0), (DAYS + 1, 1)):
        seconds = str(86400 * days)
        check = openssl("x509", "-noout", "-in", cert_file, "-checkend", seconds)
        assert check.returncode == expired

    # The three public-key extractors agree with each other.
    with open(key_file, "rb") as f:
        pubkey = get_pubkey(f.read())
    assert pubkey.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert get_csr_pubkey(csr_data) == pubkey
    assert get_cert_pubkey(cert_data) == pubkey


def test_issue_cert_reuses_serial_file(tmp_path, pki):
    p, ca_id, cert_id = pki
    with open(p.path(ca_id, "srl")) as f:
        first = f.read()
    second = issue_cert(
        p.path(cert_id, "csr"), p.path(ca_id, "ca"), p.path(ca_id, "key"),
        p.path(ca_id, "srl"),
    )  # fmt: skip
    with open(p.path(ca_id, "srl")) as f:
        assert f.read() != first
    with open(p.path(cert_id, "cert"), "rb") as f:
        assert second != f.read()


def test_openssl_failure_carries_its_stderr(tmp_path):
    missing = str(tmp_path / "missing.key")
    with pytest.raises(subprocess.CalledProcessError) as e:
        create_ca(missing, "/CN=x")
    assert e.value.returncode != 0
    assert missing in "\n".join(e.value.__notes__)


def test_get_pubkey_rejects_garbage():
    with pytest.raises(subprocess.CalledProcessError):
        get_pubkey(b"not a key")
    with pytest.raises(TypeError) as e:
        get_cert_pubkey("text")
    assert str(e.value) == f"cert_data: need a {bytes!r}; got a {str!r}: 'text'"


def test_PKI_validates_ssldir(tmp_path):
    with pytest.raises(TypeError) as e:
        PKI(tmp_path)
    assert str(e.value).startswith(f"ssldir: need a {str!r}; got a ")
    missing = str(tmp_path / "nope")
    with pytest.raises(ValueError) as e:
        PKI(missing)
    assert str(e.value) == f"ssldir: not a directory: {missing!r}"


def test_PKI_repr_and_path(tmp_path):
    p = PKI(str(tmp_path))
    assert p.ssldir == str(tmp_path)
    assert repr(p) == f"PKI({str(tmp_path)!r})"
    assert p.path("ABC", "key") == os.path.join(str(tmp_path), "ABC.key")


def test_PKI_create_key_names_key_by_its_public_key_hash(pki):
    p, ca_id, cert_id = pki
    for kid in (ca_id, cert_id):
        assert len(kid) == 48
        key_file = p.path(kid, "key")
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o400
        with open(key_file, "rb") as f:
            key_data = f.read()
        assert hash_pubkey(get_pubkey(key_data)) == kid
        assert key_bits(key_data) == BITS


def test_PKI_create_key_defaults_to_4096_bits():
    import inspect

    default = inspect.signature(PKI.create_key).parameters["bits"].default
    assert default == 4096


def test_PKI_certificates_use_ids_as_common_names(pki):
    p, ca_id, cert_id = pki
    assert subject_of(p.path(ca_id, "ca")) == f"subject=CN={ca_id}"
    assert subject_of(p.path(cert_id, "cert")) == f"subject=CN={cert_id}"
    result = verify_strict(p.path(ca_id, "ca"), p.path(cert_id, "cert"))
    assert result.returncode == 0, result.stderr
    with open(p.path(cert_id, "cert"), "rb") as f:
        assert hash_pubkey(get_cert_pubkey(f.read())) == cert_id


def test_PKI_refuses_to_overwrite(pki):
    p, ca_id, cert_id = pki
    with pytest.raises(FileExistsError):
        p.create_ca(ca_id)
    with pytest.raises(FileExistsError):
        p.issue_cert(cert_id, ca_id)


def test_PKI_sslconfigs_name_the_files_each_side_needs(pki):
    p, ca_id, cert_id = pki
    assert p.get_server_sslconfig(cert_id, ca_id) == {
        "cert_file": p.path(cert_id, "cert"),
        "key_file": p.path(cert_id, "key"),
        "ca_file": p.path(ca_id, "ca"),
    }
    assert p.get_anonymous_server_sslconfig(cert_id) == {
        "cert_file": p.path(cert_id, "cert"),
        "key_file": p.path(cert_id, "key"),
        "allow_unauthenticated_clients": True,
    }
    assert p.get_client_sslconfig(ca_id, cert_id) == {
        "ca_file": p.path(ca_id, "ca"),
        "check_hostname": False,
        "cert_file": p.path(cert_id, "cert"),
        "key_file": p.path(cert_id, "key"),
    }
    assert p.get_anonymous_client_sslconfig(ca_id) == {
        "ca_file": p.path(ca_id, "ca"),
        "check_hostname": False,
    }


def test_module_exports():
    for name in sslhelpers.__all__:
        assert getattr(sslhelpers, name).__doc__ or name == "DAYS"


def alt_names_of(cert_file):
    out = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", cert_file)
    lines = out.stdout.decode().splitlines()
    return lines[1].strip() if len(lines) > 1 else None


@pytest.mark.parametrize(
    ("curve", "name"), [("P-256", "prime256v1"), ("P-384", "secp384r1")]
)
def test_create_ec_key_makes_a_named_curve_key(curve, name):
    key_data = create_ec_key(curve)
    assert key_data.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    text = openssl("pkey", "-noout", "-text", stdin=key_data).stdout.decode()
    assert f"ASN1 OID: {name}" in text
    assert create_ec_key(curve) != key_data


def test_create_ec_key_defaults_to_p256():
    text = openssl("pkey", "-noout", "-text", stdin=create_ec_key()).stdout.decode()
    assert "NIST CURVE: P-256" in text


def test_create_ec_key_rejects_other_curves():
    with pytest.raises(ValueError) as e:
        create_ec_key("P-521")
    assert str(e.value) == "curve must be one of ('P-256', 'P-384'); got 'P-521'"
    with pytest.raises(TypeError) as e:
        create_ec_key(b"P-256")
    assert str(e.value) == f"curve: need a {str!r}; got a {bytes!r}: b'P-256'"


def test_make_alt_names_sorts_dns_names_from_ip_addresses():
    names = ["localhost", "127.0.0.1", "::1", "a-1.example.org", "localhost"]
    assert make_alt_names(names) == (
        "DNS:localhost, IP:127.0.0.1, IP:::1, DNS:a-1.example.org"
    )
    assert make_alt_names(iter(["ABCDEF234567"])) == "DNS:ABCDEF234567"


@pytest.mark.parametrize(
    "bad",
    ["", "-x.example", "x-.example", "a..b", "under_score", "sp ace", "x" * 64,
     ".".join(["abcdefghij"] * 24), "*.example", "caf\u00e9", "1.2.3.4/8"],
)  # fmt: skip
def test_make_alt_names_rejects_what_is_neither_host_nor_address(bad):
    with pytest.raises(ValueError) as e:
        make_alt_names(["ok.example", bad])
    assert str(e.value) == f"names: not a host name nor an IP address: {bad!r}"


def test_make_alt_names_rejects_bad_types_and_nothing():
    with pytest.raises(TypeError) as e:
        make_alt_names("localhost")
    assert str(e.value) == f"names: need an iterable of {str!r}; got 'localhost'"
    with pytest.raises(TypeError) as e:
        make_alt_names(["localhost", b"x"])
    assert str(e.value) == f"names: need {str!r} items; got a {bytes!r}: b'x'"
    with pytest.raises(ValueError) as e:
        make_alt_names([])
    assert str(e.value) == "names: need at least one name; got none"


def test_issue_cert_with_alt_names_on_an_ec_chain(tmp_path):
    ca_key = str(tmp_path / "ca.key")
    safe_write(ca_key, create_ec_key())
    ca_file = str(tmp_path / "ca.pem")
    safe_write(ca_file, create_ca(ca_key, "/CN=TheCA"))
    key_file = str(tmp_path / "leaf.key")
    safe_write(key_file, create_ec_key())
    csr_file = str(tmp_path / "leaf.csr")
    safe_write(csr_file, create_csr(key_file, "/CN=TheLeaf"))
    cert_file = str(tmp_path / "leaf.pem")
    names = ("TheLeaf", "localhost", "::1")
    srl = str(tmp_path / "ca.srl")
    safe_write(cert_file, issue_cert(csr_file, ca_file, ca_key, srl, names))
    assert verify_strict(ca_file, cert_file).returncode == 0
    assert alt_names_of(cert_file) == (
        "DNS:TheLeaf, DNS:localhost, IP Address:0:0:0:0:0:0:0:1"
    )
    text = openssl("x509", "-noout", "-text", "-in", cert_file).stdout.decode()
    assert "ecdsa-with-SHA384" in text
    # Without alt_names, no extension at all (what 0.19 made).
    plain = str(tmp_path / "plain.pem")
    safe_write(plain, issue_cert(csr_file, ca_file, ca_key, srl))
    assert alt_names_of(plain) is None


def test_issue_cert_checks_alt_names_before_running_openssl(tmp_path):
    with pytest.raises(TypeError) as e:
        issue_cert("a", "b", "c", "d", "localhost")
    assert str(e.value) == f"alt_names: need an iterable of {str!r}; got 'localhost'"
    with pytest.raises(ValueError) as e:
        issue_cert("a", "b", "c", "d", ["bad name"])
    assert str(e.value) == "alt_names: not a host name nor an IP address: 'bad name'"


def test_PKI_issue_cert_lists_the_id_then_the_hostnames(tmp_path):
    p = PKI(str(tmp_path))
    ca_id = p.create_ec_key()
    p.create_ca(ca_id)
    cert_id = p.create_ec_key("P-384")
    p.create_csr(cert_id)
    cert_file = p.issue_cert(cert_id, ca_id, ["localhost", "10.0.0.1"])
    assert alt_names_of(cert_file) == (
        f"DNS:{cert_id}, DNS:localhost, IP Address:10.0.0.1"
    )
    assert subject_of(cert_file) == f"subject=CN={cert_id}"
    with open(cert_file, "rb") as f:
        assert hash_pubkey(get_cert_pubkey(f.read())) == cert_id


def test_PKI_issue_cert_names_hostnames_in_its_errors(pki):
    p, ca_id, cert_id = pki
    with pytest.raises(ValueError) as e:
        p.issue_cert(cert_id, ca_id, ["ok", "not ok"])
    assert str(e.value) == "hostnames: not a host name nor an IP address: 'not ok'"
    with pytest.raises(TypeError) as e:
        p.issue_cert(cert_id, ca_id, "localhost")
    assert str(e.value) == f"hostnames: need an iterable of {str!r}; got 'localhost'"


def test_PKI_create_ec_key_names_key_by_its_public_key_hash(tmp_path):
    p = PKI(str(tmp_path))
    key_id = p.create_ec_key()
    with open(p.path(key_id, "key"), "rb") as f:
        assert hash_pubkey(get_pubkey(f.read())) == key_id


def serial_of(cert_file):
    out = openssl("x509", "-noout", "-serial", "-in", cert_file).stdout.decode()
    return int(out.strip().split("=")[1], 16)


def test_issue_cert_keeps_the_serial_file_as_openssl_does(tmp_path, pki):
    p, ca_id, cert_id = pki
    srl = str(tmp_path / "fresh.srl")
    csr, ca, key = p.path(cert_id, "csr"), p.path(ca_id, "ca"), p.path(ca_id, "key")
    first = tmp_path / "first.pem"
    first.write_bytes(issue_cert(csr, ca, key, srl))
    with open(srl) as f:
        text = f.read()
    assert text == text.upper() and text.endswith("\n")
    assert serial_of(str(first)) == int(text, 16) > 0
    assert int(text, 16).bit_length() <= 159  # at most 20 octets, positive
    second = tmp_path / "second.pem"
    second.write_bytes(issue_cert(csr, ca, key, srl))
    assert serial_of(str(second)) == int(text, 16) + 1


def test_issue_cert_refuses_a_corrupt_serial_file(tmp_path, pki):
    p, ca_id, cert_id = pki
    srl = tmp_path / "bad.srl"
    srl.write_text("not hex\n")
    with pytest.raises(ValueError) as e:
        issue_cert(
            p.path(cert_id, "csr"), p.path(ca_id, "ca"), p.path(ca_id, "key"), str(srl)
        )
    assert str(e.value) == "srl_file: not a hex serial number: 'not hex'"


@pytest.mark.parametrize("curve", ["P-256", "P-384"])
def test_get_pubkey_of_an_ec_key_equals_openssl_pkey_pubout(curve):
    """Read in Python, the public key must be byte for byte openssl's: ids hash it."""
    for _ in range(5):
        key_data = create_ec_key(curve)
        expected = openssl("pkey", "-pubout", stdin=key_data).stdout
        assert get_pubkey(key_data) == expected


def test_get_pubkey_of_an_rsa_key_and_of_sec1_ec_keys_uses_openssl():
    rsa = create_key(BITS)
    assert get_pubkey(rsa) == openssl("pkey", "-pubout", stdin=rsa).stdout
    sec1 = openssl("ec", stdin=create_ec_key()).stdout  # BEGIN EC PRIVATE KEY
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert get_pubkey(sec1) == openssl("pkey", "-pubout", stdin=sec1).stdout


def test_get_pubkey_of_a_mangled_pkcs8_key_is_openssls_error():
    body = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n"
    with pytest.raises(subprocess.CalledProcessError):
        get_pubkey(body)
