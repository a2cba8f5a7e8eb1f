"""Basic/Digest authentication: RFC test vectors, ONVIF exchanges, server checks, properties."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.errors import ProtocolError
from nvr.protocol.rtsp_auth import (
    AuthError,
    AuthStatus,
    BasicChallenge,
    BasicCredentials,
    ClientAuthenticator,
    DigestChallenge,
    DigestCredentials,
    NonceState,
    OtherChallenge,
    OtherCredentials,
    ServerAuthenticator,
    UriCredentials,
    choose_challenge,
    digest_authorization,
    digest_response,
    format_authorization,
    format_challenge,
    insert_uri_password,
    join_uri_credentials,
    parse_authorization,
    parse_challenges,
    parse_www_authenticate,
    split_uri_credentials,
    split_uri_password,
)

URI = "rtsp://10.0.0.5/onvif/replay/REC_CAM1"
USERS = {"operator": "s3cret", "Mufasa": "Circle of Life", "jürgen": "pässwörd"}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# --- published test vectors ---------------------------------------------------------------------


def test_rfc2617_md5_qop_auth_vector() -> None:
    challenge = parse_www_authenticate(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )[0]
    assert isinstance(challenge, DigestChallenge) and challenge.qop == ("auth", "auth-int")
    credentials = digest_authorization(
        challenge, "Mufasa", "Circle Of Life", "GET", "/dir/index.html", cnonce="0a4f113b"
    )
    assert credentials.response == "6629fae49393a05397450978507c4ef1"
    assert credentials.qop == "auth" and credentials.nc == "00000001"
    assert credentials.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert parse_authorization(format_authorization(credentials)) == credentials


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_vectors(algorithm: str, expected: str) -> None:
    response = digest_response(
        username="Mufasa",
        realm="http-auth@example.org",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        algorithm=algorithm,
        qop="auth",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert response == expected


def test_rfc7617_basic_vector() -> None:
    assert format_authorization(BasicCredentials("Aladdin", "open sesame")) == (
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    )
    assert parse_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == BasicCredentials(
        "Aladdin", "open sesame"
    )


def test_legacy_sess_and_auth_int_formulas() -> None:
    ha1 = md5("u:r:p")
    ha2 = md5(f"DESCRIBE:{URI}")
    legacy = digest_response(
        username="u", realm="r", password="p", method="DESCRIBE", uri=URI, nonce="n"
    )
    assert legacy == md5(f"{ha1}:n:{ha2}")  # RFC 2069: no qop, no nc, no cnonce
    session = digest_response(
        username="u", realm="r", password="p", method="DESCRIBE", uri=URI, nonce="n",
        algorithm="MD5-sess", qop="auth", nc="00000002", cnonce="c",
    )  # fmt: skip
    assert session == md5(f"{md5(f'{ha1}:n:c')}:n:00000002:c:auth:{ha2}")
    body_hash = md5("v=0\r\n")
    integrity = digest_response(
        username="u", realm="r", password="p", method="SET_PARAMETER", uri=URI, nonce="n",
        qop="auth-int", nc="00000001", cnonce="c", body=b"v=0\r\n",
    )  # fmt: skip
    assert integrity == md5(
        f"{ha1}:n:00000001:c:auth-int:{md5(f'SET_PARAMETER:{URI}:{body_hash}')}"
    )
    with pytest.raises(AuthError, match="algorithm"):
        digest_response(
            username="u", realm="r", password="p", method="M", uri="/", nonce="n", algorithm="SHA-1"
        )


# --- challenges -----------------------------------------------------------------------------


def test_part_c_challenge_and_answer() -> None:
    (challenge,) = parse_challenges(
        ['Digest realm="nvr", nonce="5e1b0c9a77", algorithm=MD5, qop="auth"']
    )
    assert challenge == DigestChallenge("nvr", "5e1b0c9a77", "MD5", ("auth",))
    credentials = digest_authorization(
        challenge, "operator", "s3cret", "DESCRIBE", URI, cnonce="a1b2"
    )
    header = format_authorization(credentials)
    assert header.startswith(
        f'Digest username="operator", realm="nvr", nonce="5e1b0c9a77", uri="{URI}"'
    )
    assert header.endswith('algorithm=MD5, qop=auth, nc=00000001, cnonce="a1b2"')
    ha1, ha2 = md5("operator:nvr:s3cret"), md5(f"DESCRIBE:{URI}")
    assert credentials.response == md5(f"{ha1}:5e1b0c9a77:00000001:a1b2:auth:{ha2}")


def test_core_challenge_pair_prefers_sha256_whatever_the_order() -> None:
    values = [
        'Digest realm="nvr", qop="auth", nonce="abc", opaque="o", algorithm=MD5',
        'Digest realm="nvr", qop="auth", nonce="abc", opaque="o", algorithm=SHA-256',
    ]
    chosen = choose_challenge(parse_challenges(values))
    assert isinstance(chosen, DigestChallenge) and chosen.algorithm == "SHA-256"
    assert chosen.opaque == "o"
    chosen = choose_challenge(parse_challenges(reversed(values)))
    assert isinstance(chosen, DigestChallenge) and chosen.algorithm == "SHA-256"


def test_several_challenges_in_one_header() -> None:
    challenges = parse_www_authenticate(
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple", '
        "Bearer abc.DEF-_~+/==, Digest realm=IP Camera(10321), nonce=ab12, stale=TRUE, "
        "algorithm=sha-256-sess, Negotiate"
    )
    assert challenges == [
        OtherChallenge("Newauth", (("realm", "apps"), ("type", "1"), ("title", 'Login to "apps"'))),
        BasicChallenge("simple"),
        OtherChallenge("Bearer", token68="abc.DEF-_~+/=="),
        DigestChallenge("IP Camera(10321)", "ab12", "sha-256-sess", stale=True),
        OtherChallenge("Negotiate"),
    ]
    assert isinstance(choose_challenge(challenges), DigestChallenge)


def test_choose_challenge_rules() -> None:
    basic = BasicChallenge("r")
    md5_challenge = DigestChallenge("r", "n")
    unknown_algorithm = DigestChallenge("r", "n", "SHA-1")
    only_auth_int = DigestChallenge("r", "n", qop=("auth-int",))
    unknown_qop = DigestChallenge("r", "n", qop=("auth-conf",))
    assert choose_challenge([basic, md5_challenge]) is md5_challenge
    assert choose_challenge([unknown_algorithm, basic]) is basic
    assert choose_challenge([unknown_qop, only_auth_int]) is only_auth_int
    assert choose_challenge([basic], allow_basic=False) is None
    assert choose_challenge([OtherChallenge("Bearer")]) is None


def test_challenge_serialisation() -> None:
    assert format_challenge(DigestChallenge("nvr", "n", "SHA-256", ("auth",), stale=True)) == (
        'Digest realm="nvr", nonce="n", algorithm=SHA-256, qop="auth", stale=true'
    )
    assert format_challenge(BasicChallenge('a"b')) == 'Basic realm="a\\"b"'
    with pytest.raises(AuthError):
        format_challenge(DigestChallenge("nvr", "n\r\n"))
    with pytest.raises(AuthError):
        format_challenge(DigestChallenge("nvr", "n", algorithm="MD 5"))


@pytest.mark.parametrize(
    "value",
    [
        "",
        'Digest realm="nvr"',
        'Digest nonce="x"',
        'Digest realm="nvr, nonce="x"',
        'Digest realm="nvr" nonce="x"',
        "Digest realm nonce",
        '"Digest" realm="x"',
        'Digest realm="r", nonce="n", qop="auth conf"',
        'Digest realm="r", nonce="n", algorithm="M D5"',
        'Basic realm="r", charset="utf 8"',
        "Digest, =x",
        "Basic=",
    ],
)
def test_bad_challenges(value: str) -> None:
    with pytest.raises(AuthError):
        parse_www_authenticate(value)


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic",
        "Basic !!!",
        "Basic dXNlcg==",  # no ':'
        "Basic YTpi, Basic YTpi",
        "Digest YWJj",
        'Digest username="a", realm="r", nonce="n", uri="/"',
        'Digest username="a", realm="r", nonce="n", uri="/", response="x", qop=auth',
        'Digest username="a", realm="r", nonce="n", uri="/", response="x", nc=xyz',
        'Digest username="a", realm="r", nonce="n", uri="/", response="x", nc=123456789',
    ],
)
def test_bad_credentials(value: str) -> None:
    with pytest.raises(AuthError):
        parse_authorization(value)


def test_other_credentials_and_non_utf8_basic() -> None:
    assert parse_authorization("Bearer abc") == OtherCredentials("Bearer", token68="abc")
    raw = base64.b64encode(b"j\xfcrgen:pw").decode()
    credentials = parse_authorization(f"Basic {raw}")
    assert isinstance(credentials, BasicCredentials)
    assert format_authorization(credentials) == f"Basic {raw}"  # bytes survive
    with pytest.raises(AuthError):
        format_authorization(BasicCredentials("a:b", "c"))


# --- client state machine ------------------------------------------------------------------------


def test_client_authenticator_flow() -> None:
    server = ServerAuthenticator("nvr", b"k", algorithms=("SHA-256", "MD5"))
    client = ClientAuthenticator("operator", "s3cret")
    assert client.authorization("DESCRIBE", URI) is None
    assert client.handle_challenges(server.challenges(now=1000))
    first = client.authorization("DESCRIBE", URI)
    second = client.authorization("SETUP", URI + "/track1")
    assert first is not None and second is not None
    parsed = parse_authorization(second)
    assert isinstance(parsed, DigestCredentials)
    assert parsed.algorithm == "SHA-256" and parsed.nc == "00000002"
    for header, method, uri in ((first, "DESCRIBE", URI), (second, "SETUP", URI + "/track1")):
        result = server.verify(header, method=method, uri=uri, password_for=USERS.get, now=1001)
        assert result.ok and result.username == "operator"
    # Used several times, then rejected: the nonce merely expired, try again.
    assert client.handle_challenges(server.challenges(now=2000))
    client.authorization("PLAY", URI)
    # Rejected right after one use without stale=true: wrong password, stop.
    assert not client.handle_challenges(server.challenges(now=2001))
    client.authorization("PLAY", URI)
    assert client.handle_challenges(server.challenges(stale=True, now=2002))


def test_client_basic_and_no_usable_challenge() -> None:
    client = ClientAuthenticator("a", "b")
    assert client.handle_challenges(['Basic realm="cam"'])
    assert client.authorization("OPTIONS", "*") == "Basic YTpi"
    assert not ClientAuthenticator("a", "b", allow_basic=False).handle_challenges(
        ['Basic realm="x"']
    )
    with pytest.raises(AuthError):
        client.handle_challenges(['Digest realm="x"'])


# --- server ----------------------------------------------------------------------------------


def answer(
    server: ServerAuthenticator,
    *,
    user: str = "operator",
    password: str = "s3cret",
    method: str = "DESCRIBE",
    uri: str = URI,
    now: float = 1000,
    index: int = 0,
    nc: int = 1,
) -> str:
    challenge = parse_www_authenticate(server.challenges(now=now)[index])[0]
    assert isinstance(challenge, DigestChallenge)
    return format_authorization(digest_authorization(challenge, user, password, method, uri, nc=nc))


@pytest.fixture
def server() -> ServerAuthenticator:
    return ServerAuthenticator("nvr", b"secret", nonce_lifetime=300)


def verify(server: ServerAuthenticator, header: str | None, **kwargs: object) -> AuthStatus:
    options: dict[str, object] = {"method": "DESCRIBE", "uri": URI, "now": 1010}
    options.update(kwargs)
    return server.verify(header, password_for=USERS.get, **options).status  # type: ignore[arg-type]


def test_server_challenges(server: ServerAuthenticator) -> None:
    values = server.challenges(now=1000)
    sha, md5_challenge = (parse_www_authenticate(v)[0] for v in values)
    assert isinstance(sha, DigestChallenge) and isinstance(md5_challenge, DigestChallenge)
    assert (sha.algorithm, md5_challenge.algorithm) == ("SHA-256", "MD5")
    assert sha.nonce == md5_challenge.nonce and sha.qop == ("auth",) and sha.realm == "nvr"
    assert server.nonce_state(sha.nonce, now=1000) is NonceState.VALID


def test_server_accepts_both_algorithms_and_legacy(server: ServerAuthenticator) -> None:
    assert verify(server, answer(server, index=0)) is AuthStatus.OK
    assert verify(server, answer(server, index=1)) is AuthStatus.OK
    assert verify(server, answer(server, user="jürgen", password="pässwörd")) is AuthStatus.OK
    nonce = server.make_nonce(1000)
    legacy = DigestChallenge("nvr", nonce, "MD5")
    header = format_authorization(
        digest_authorization(legacy, "operator", "s3cret", "DESCRIBE", URI)
    )
    assert verify(server, header) is AuthStatus.OK
    strict = ServerAuthenticator("nvr", b"secret", allow_legacy=False)
    assert verify(strict, header) is AuthStatus.UNSUPPORTED


def test_server_rejections(server: ServerAuthenticator) -> None:
    assert verify(server, None) is AuthStatus.MISSING
    assert verify(server, "Digest garbage") is AuthStatus.MALFORMED
    assert verify(server, "Bearer token") is AuthStatus.UNSUPPORTED
    assert verify(server, "Basic YTpi") is AuthStatus.UNSUPPORTED
    assert verify(server, answer(server, password="wrong")) is AuthStatus.BAD_CREDENTIALS
    assert verify(server, answer(server, user="nobody")) is AuthStatus.UNKNOWN_USER
    other_realm = ServerAuthenticator("elsewhere", b"secret")
    assert verify(server, answer(other_realm)) is AuthStatus.REALM_MISMATCH
    md5_only = ServerAuthenticator("nvr", b"secret", algorithms=("MD5",))
    assert verify(md5_only, answer(server, index=0)) is AuthStatus.UNSUPPORTED
    assert verify(server, answer(server), uri="rtsp://10.0.0.5/other") is AuthStatus.URI_MISMATCH
    assert verify(server, answer(server), method="PLAY") is AuthStatus.BAD_CREDENTIALS


def test_server_uri_comparison_is_lenient_about_form(server: ServerAuthenticator) -> None:
    header = answer(server, uri="/onvif/replay/REC_CAM1", method="POST")
    assert verify(server, header, method="POST", uri=URI + "/") is AuthStatus.OK
    unchecked = ServerAuthenticator("nvr", b"secret", check_uri=False)
    assert verify(unchecked, answer(server), uri="rtsp://x/y") is AuthStatus.OK


def test_server_nonce_lifetime_and_forgery(server: ServerAuthenticator) -> None:
    header = answer(server, now=1000)
    assert verify(server, header, now=1300) is AuthStatus.OK
    assert verify(server, answer(server, now=1000, nc=2), now=1301) is AuthStatus.STALE_NONCE
    # A nonce from another secret (or a restart) with the right password is merely stale…
    restarted = ServerAuthenticator("nvr", b"new secret")
    assert verify(restarted, header) is AuthStatus.STALE_NONCE
    # …but with a wrong password it is just wrong.
    assert verify(restarted, answer(server, password="x")) is AuthStatus.BAD_CREDENTIALS
    assert server.nonce_state("short", now=0) is NonceState.FOREIGN
    assert server.nonce_state("!" * 43, now=0) is NonceState.FOREIGN
    assert server.nonce_state(server.make_nonce(5000), now=1000) is NonceState.FOREIGN
    assert server.nonce_state(server.make_nonce(1000), now=1301) is NonceState.EXPIRED


def test_server_refuses_replayed_nonce_counts(server: ServerAuthenticator) -> None:
    challenge = parse_www_authenticate(server.challenges(now=1000)[0])[0]
    assert isinstance(challenge, DigestChallenge)

    def with_nc(nc: int) -> str:
        credentials = digest_authorization(challenge, "operator", "s3cret", "DESCRIBE", URI, nc=nc)
        return format_authorization(credentials)

    assert verify(server, with_nc(1)) is AuthStatus.OK
    assert verify(server, with_nc(1)) is AuthStatus.REPLAY
    assert verify(server, with_nc(5)) is AuthStatus.OK
    assert verify(server, with_nc(3)) is AuthStatus.OK  # late but unseen: inside the window
    assert verify(server, with_nc(3)) is AuthStatus.REPLAY
    assert verify(server, with_nc(100)) is AuthStatus.OK
    assert verify(server, with_nc(20)) is AuthStatus.REPLAY  # fell out of the 64-wide window
    zero = format_authorization(
        DigestCredentials(
            "operator", "nvr", challenge.nonce, URI, "0", qop="auth", nc="0", cnonce="c"
        )
    )
    assert verify(server, zero) is AuthStatus.MALFORMED


def test_server_basic_when_allowed() -> None:
    server = ServerAuthenticator("nvr", b"k", allow_basic=True)
    assert server.challenges(now=0)[-1] == 'Basic realm="nvr"'
    good = format_authorization(BasicCredentials("operator", "s3cret"))
    assert verify(server, good) is AuthStatus.OK
    assert (
        verify(server, format_authorization(BasicCredentials("operator", "x")))
        is AuthStatus.BAD_CREDENTIALS
    )
    assert (
        verify(server, format_authorization(BasicCredentials("x", "x"))) is AuthStatus.UNKNOWN_USER
    )


def test_server_configuration_errors() -> None:
    with pytest.raises(AuthError):
        ServerAuthenticator("nvr", algorithms=("SHA-1",))
    with pytest.raises(AuthError):
        ServerAuthenticator("nvr", algorithms=())


# --- credentials in URIs -----------------------------------------------------------------------


CAM = "rtsp://192.168.1.20:554/onvif/profile1"


@pytest.mark.parametrize(
    ("uri", "bare", "credentials"),
    [
        (CAM.replace("//", "//admin:12345@"), CAM, UriCredentials("admin", "12345")),
        (
            "rtsp://us%40er:p%3Ass%2Fw%C3%B6rd@cam/x?y=1",
            "rtsp://cam/x?y=1",
            UriCredentials("us@er", "p:ss/wörd"),
        ),
        ("rtsp://admin:p@ss@cam/", "rtsp://cam/", UriCredentials("admin", "p@ss")),
        ("rtsp://admin@cam", "rtsp://cam", UriCredentials("admin")),
        ("rtsp://:@cam", "rtsp://cam", UriCredentials("", "")),
        ("rtsp://cam/path@x", "rtsp://cam/path@x", None),
        ("/relative@path", "/relative@path", None),
    ],
)
def test_split_uri_credentials(uri: str, bare: str, credentials: UriCredentials | None) -> None:
    assert split_uri_credentials(uri) == (bare, credentials)


def test_uri_credentials_errors_and_join() -> None:
    with pytest.raises(AuthError):
        split_uri_credentials("rtsp://%ff:x@cam/")
    assert join_uri_credentials("rtsp://old:pw@cam/x", UriCredentials("a@b", "c:d")) == (
        "rtsp://a%40b:c%3Ad@cam/x"
    )
    assert join_uri_credentials("rtsp://old:pw@cam/x", None) == "rtsp://cam/x"
    with pytest.raises(AuthError):
        join_uri_credentials("cam/x", UriCredentials("a"))


@pytest.mark.parametrize(
    ("uri", "kept", "password"),
    [
        (CAM.replace("//", "//admin:12345@"), CAM.replace("//", "//admin@"), "12345"),
        ("rtsp://us%40er:p%3As@cam/x?y=1", "rtsp://us%40er@cam/x?y=1", "p%3As"),
        ("rtsp://admin:p@ss@cam/", "rtsp://admin@cam/", "p@ss"),
        ("rtsp://a@b:pw@cam/", "rtsp://a@b@cam/", "pw"),
        ("rtsp://:@cam", "rtsp://@cam", ""),
        ("rtsp://admin@cam", "rtsp://admin@cam", None),
        ("rtsp://cam:554/path:x@y", "rtsp://cam:554/path:x@y", None),
        ("/relative:x@path", "/relative:x@path", None),
    ],
)
def test_split_uri_password_round_trips_exactly(uri: str, kept: str, password: str | None) -> None:
    assert split_uri_password(uri) == (kept, password)
    assert insert_uri_password(kept, password) == uri


def test_insert_uri_password_needs_a_user_name() -> None:
    with pytest.raises(AuthError):
        insert_uri_password("rtsp://cam/x", "pw")


# --- properties -------------------------------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
text = st.text(
    alphabet=st.characters(exclude_characters="\r\n\0", codec="utf-8"),
    max_size=20,
)
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=10)
optional_token = st.none() | tokens
other_schemes = tokens.filter(lambda s: s.lower() not in ("basic", "digest"))
token68 = st.from_regex(r"[A-Za-z0-9\-._~+/]+=*", fullmatch=True)
params = st.lists(st.tuples(tokens.map(str.lower), text), max_size=3).map(tuple)
hex_nc = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=8)

challenges = st.one_of(
    st.builds(BasicChallenge, text, optional_token),
    st.builds(
        DigestChallenge,
        text,
        text,
        optional_token,
        st.lists(tokens, max_size=3).map(tuple),
        st.none() | text,
        st.booleans(),
        st.none() | text,
        optional_token,
        st.booleans(),
    ),
    st.builds(OtherChallenge, other_schemes, params),
    st.builds(OtherChallenge, other_schemes, st.just(()), token68),
)


@st.composite
def digest_credentials(draw: st.DrawFn) -> DigestCredentials:
    qop = draw(optional_token)
    return DigestCredentials(
        username=draw(text),
        realm=draw(text),
        nonce=draw(text),
        uri=draw(text),
        response=draw(text),
        algorithm=draw(optional_token),
        qop=qop,
        nc=draw(hex_nc if qop else st.none() | hex_nc),
        cnonce=draw(text if qop else st.none() | text),
        opaque=draw(st.none() | text),
        userhash=draw(st.booleans()),
    )


credentials = st.one_of(
    st.builds(BasicCredentials, text.filter(lambda u: ":" not in u), text),
    digest_credentials(),
    st.builds(OtherCredentials, other_schemes, params),
    st.builds(OtherCredentials, other_schemes, st.just(()), token68),
)


@given(challenges)
def test_challenge_round_trip(challenge: BasicChallenge | DigestChallenge | OtherChallenge) -> None:
    assert parse_www_authenticate(format_challenge(challenge)) == [challenge]


@given(st.lists(challenges, min_size=1, max_size=4))
def test_challenges_joined_in_one_header_round_trip(items: list[object]) -> None:
    joined = ", ".join(format_challenge(c) for c in items)  # type: ignore[arg-type]
    assert parse_www_authenticate(joined) == items


@given(credentials)
def test_credentials_round_trip(
    item: BasicCredentials | DigestCredentials | OtherCredentials,
) -> None:
    assert parse_authorization(format_authorization(item)) == item


@given(st.builds(UriCredentials, text, st.none() | text))
def test_uri_credentials_round_trip(item: UriCredentials) -> None:
    uri = join_uri_credentials("rtsp://cam:554/onvif/profile1", item)
    assert split_uri_credentials(uri) == ("rtsp://cam:554/onvif/profile1", item)


@given(
    text.filter(bool),
    text,
    st.sampled_from(["SHA-256", "MD5", "MD5-sess", "SHA-256-sess"]),
    st.sampled_from(["DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER"]),
    st.integers(1, 1000),
)
def test_client_answers_verify_on_the_server(
    user: str, password: str, algorithm: str, method: str, nc: int
) -> None:
    server = ServerAuthenticator("nvr", b"k", algorithms=(algorithm,))
    challenge = parse_www_authenticate(server.challenges(now=0)[0])[0]
    assert isinstance(challenge, DigestChallenge)
    header = format_authorization(
        digest_authorization(challenge, user, password, method, URI, nc=nc)
    )
    result = server.verify(header, method=method, uri=URI, password_for={user: password}.get, now=1)
    assert result.ok and result.username == user


@given(st.text(max_size=80) | st.text(alphabet='Digest Basic realm="nonce,=\\ ', max_size=60))
def test_parsers_raise_only_auth_errors(value: str) -> None:
    for parse in (parse_www_authenticate, parse_authorization, split_uri_credentials):
        try:
            parse(value)
        except ProtocolError:
            pass
    ServerAuthenticator("nvr", b"k").verify(value, method="M", uri="/", password_for=USERS.get)
