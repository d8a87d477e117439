"""Sign-in with the organisation's identity provider: OpenID Connect, with Authlib.

The authorization code flow with PKCE (S256): `begin` makes a state, a nonce and a code
verifier (kept server-side by signin.save_oidc_flow, bound to the browser) and the URL to send
the browser to; `complete` exchanges the code (with the verifier), then verifies the ID token
against the issuer's published keys (JWKS, fetched again once when the key id is unknown, for
key rotation): signature and algorithm, issuer, audience, expiry and the nonce. Only then is its
`email` claim trusted; the console lets it in only if that address has a staff account.

The provider's discovery document is read once per process and checked to name the configured
issuer. These are the only requests of the console that wait on another server: the sign-in
cannot happen without it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from ..errors import NewsletterError
from ..i18n import _
from ..settings import ConsoleSettings

TIMEOUT_SECONDS = 10
LEEWAY_SECONDS = 120


class OidcError(NewsletterError):
    """The identity provider could not be reached, or what it answered does not verify."""

    http_status = 403


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    nonce: str
    code_verifier: str


class OidcClient:
    """One issuer, one client id; caches the discovery document and the keys."""

    def __init__(self, console: ConsoleSettings) -> None:
        self.issuer = console.oidc_issuer.rstrip("/")
        self.client_id = console.oidc_client_id or ""
        self.client_secret = console.oidc_client_secret or ""
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def configured(console: ConsoleSettings) -> bool:
        return bool(console.oidc_issuer and console.oidc_client_id)

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=TIMEOUT_SECONDS)
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError) as exc:
            raise OidcError(_("the identity provider did not answer ({error})").format(
                error=type(exc).__name__)) from None

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                data = self._get(f"{self.issuer}/.well-known/openid-configuration")
                if str(data.get("issuer", "")).rstrip("/") != self.issuer:
                    raise OidcError(_("the identity provider's discovery document names "
                                      "another issuer"))
                self._metadata = data
            return self._metadata

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        if refresh or self._keys is None:
            self._keys = self._get(self.metadata()["jwks_uri"])
        return KeySet.import_key_set(self._keys)

    def _session(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(self.client_id, self.client_secret, scope="openid email profile",
                             redirect_uri=redirect_uri, code_challenge_method="S256",
                             default_timeout=TIMEOUT_SECONDS)

    def begin(self, redirect_uri: str) -> Started:
        """Where to send the browser, and the secrets to keep until it comes back."""
        nonce, verifier = generate_token(32), generate_token(64)
        with self._session(redirect_uri) as client:
            url, state = client.create_authorization_url(
                self.metadata()["authorization_endpoint"], state=generate_token(32),
                nonce=nonce, code_verifier=verifier)
        return Started(url=url, state=state, nonce=nonce, code_verifier=verifier)

    def complete(self, redirect_uri: str, *, code: str, nonce: str, code_verifier: str) -> str:
        """The verified address of whoever signed in (lower-cased)."""
        metadata = self.metadata()
        try:
            with self._session(redirect_uri) as client:
                token = client.fetch_token(metadata["token_endpoint"], code=code,
                                           code_verifier=code_verifier,
                                           grant_type="authorization_code")
        except Exception as exc:  # Authlib raises OAuthError, requests its own
            raise OidcError(_("the identity provider refused the sign-in ({error})").format(
                error=type(exc).__name__)) from None
        if "id_token" not in token:
            raise OidcError(_("the identity provider sent no ID token"))
        claims = self._verify(token["id_token"], nonce=nonce, access_token=token.get(
            "access_token"))
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise OidcError(_("the identity provider sent no email address"))
        if claims.get("email_verified") is False:
            raise OidcError(_("the identity provider has not verified the email address"))
        return email.strip().lower()

    def _verify(self, id_token: str, *, nonce: str, access_token: str | None) -> CodeIDToken:
        algorithms = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in algorithms if a != "none"]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), registry=registry)
            except InvalidKeyIdError:
                decoded = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
            params = {"nonce": nonce, "client_id": self.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(decoded.claims, decoded.header,
                                 {"iss": {"essential": True, "values": [self.issuer]}}, params)
            claims.validate(leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as exc:
            raise OidcError(_("the ID token does not verify ({error})").format(
                error=type(exc).__name__)) from None
        return claims
