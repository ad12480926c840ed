"""A whole MedMij network on one machine, for ``make run`` and the end-to-end tests.

``prepare`` makes, in one instance folder (``var/`` for ``make run``): a development PKI
(``certs``: a CA, a server certificate for ``dvza.localhost``, a client certificate for the demo
PGO ``pgo.localhost`` and one for the DVZA node; ``*.localhost`` is loopback, RFC 6761 §6.3),
demo MedMij lists naming this DVZA and the demo PGO (``medmij_lists.demo``),
the database with the Nictiz Cert patients, the test persons for the development login and a
sign-in for the hospital queue page. ``start`` runs four processes:

* DVZA frontchannel (authorize, login, consent, ``/ziekenhuis``) — HTTPS, no client certificate;
* DVZA backchannel (token, FHIR) — HTTPS with a required client certificate from the dev CA
  (MedMij: mutual TLS on every server-to-server call, medmij-protocol.md §8);
* the PGO simulator (``dvza.pgo``) — HTTPS, with its own client certificate for the backchannel.

Production runs the same app with a proxy in front (README, deploy/): this module is development
tooling only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import typing as t
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from ..pgo import localnames
from .processes import wait_until_answers

#: GNL names of the gegevensdiensten this DVZA offers (medmij-protocol.md §9 catalogue).
DEMO_GEGEVENSDIENSTEN = {
    "48": "Basisgegevens zorg", "51": "Documenten", "52": "Meetwaarden vitale functies",
    "53": "Meetwaarden vitale functies", "57": "Documenten", "59": "Verwijzing naar vragenlijst",
    "60": "Antwoorden op vragenlijst",
}
HOSPITAL_USER = "medewerker"


@dataclass(slots=True)
class DevNetwork:
    root: Path
    host: str = "dvza.localhost"
    front_port: int = 8443
    back_port: int = 9443
    pgo_port: int = 8444
    #: the local DigiD-like SAML IdP (``devnet_digid``): login page and SOAP backchannel (mutual TLS)
    digid_port: int = 8445
    digid_back_port: int = 9445
    pgo_hostname: str = "pgo.localhost"
    pgo_name: str = "Demo-PGO"
    aanbieder_naam: str = "umcdemo@medmij"
    aanbieder_weergavenaam: str = "UMC Demo"
    workers: int = 2
    #: more client certificates from the development CA (e.g. a PGO that is on no list, for tests)
    extra_clients: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    digid: t.Any = field(default=None, init=False)
    #: the development PKI (``certs.DevPki``), set by :meth:`prepare`
    pki: t.Any = field(default=None, init=False)

    # ---------------------------------------------------------------------------- locations
    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def lists_dir(self) -> Path:
        return self.root / "lists"

    @property
    def front_url(self) -> str:
        return f"https://{self.host}:{self.front_port}"

    @property
    def back_url(self) -> str:
        return f"https://{self.host}:{self.back_port}"

    @property
    def pgo_url(self) -> str:
        return f"https://{self.pgo_hostname}:{self.pgo_port}"

    @property
    def fhir_base(self) -> str:
        return f"{self.back_url}/fhir"

    def aanbieder(self) -> t.Any:
        """This DVZA as a PGO finds it: from the demo ZAL and GNL (a :class:`dvza.pgo.client.Aanbieder`)."""
        from medmij_lists.models import aanbieder_key

        from ..pgo.catalog import find
        from ..pgo.lists import catalog_from_lists

        found = find(catalog_from_lists(self.lists_dir), aanbieder_key(self.aanbieder_naam))
        if found is None:
            raise RuntimeError(f"{self.aanbieder_naam} is not on the ZAL in {self.lists_dir}")
        return found

    def pgo_client(self, hostname: str | None = None) -> t.Any:
        """A :class:`dvza.pgo.client.PgoClient` with the client certificate of ``hostname``."""
        from ..pgo.client import PgoClient

        client = self.pki.clients[hostname or self.pgo_hostname]
        return PgoClient.configured(hostname or self.pgo_hostname, cert=str(client.cert), key=str(client.key),
                                    ca=str(self.pki.ca_cert), redirect_uri=f"{self.pgo_url}/callback")

    def path(self, name: str) -> str:
        return str(self.root / name)

    # ------------------------------------------------------------------------------ prepare
    def prepare(self, *, shared: Path | None = None, load_data: bool = True) -> None:
        from certs.pki import ensure_dev_pki
        from medmij_lists import write_demo_lists

        self.root.mkdir(parents=True, exist_ok=True)
        clients = list(dict.fromkeys([self.pgo_hostname, self.host, *self.extra_clients]))
        self.pki = ensure_dev_pki(self.pki_dir, server_hostnames=[self.host, self.pgo_hostname, "127.0.0.1"],
                                  clients=clients)
        write_demo_lists(
            self.lists_dir, dvza_hostname=self.host, aanbieder_naam=self.aanbieder_naam,
            aanbieder_weergavenaam=self.aanbieder_weergavenaam, pgo_hostname=self.pgo_hostname,
            pgo_name=self.pgo_name, gegevensdiensten=DEMO_GEGEVENSDIENSTEN,
            authorize_url=f"{self.front_url}/oauth/authorize", token_url=f"{self.back_url}/oauth/token",
            fhir_base_url=self.fhir_base, volgnummer=int(time.time()))
        # the simulator's callback (with its port), so `dvza pgo` finds the right redirect_uri by itself
        network_file = self.lists_dir / "demo-network.json"
        network = json.loads(network_file.read_text(encoding="utf-8"))
        network.setdefault("pgo", {})["redirect_uri"] = f"{self.pgo_url}/callback"
        network_file.write_text(json.dumps(network, indent=1, ensure_ascii=False), encoding="utf-8")
        password_file = self.root / "hospital-password"
        if not password_file.exists():
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(9))
        if load_data:
            env = self.dvza_env() | ({"DVZA_SHARED_DIR": str(shared)} if shared else {})
            subprocess.run([sys.executable, "-m", "dvza.cli", "demo", "prepare"], env=env, check=True)
        from . import devnet_digid

        devnet_digid.prepare(self)

    def hospital_password(self) -> str:
        return (self.root / "hospital-password").read_text().strip()

    def dev_persons(self) -> list[dict[str, str]]:
        path = self.root / "dev-login-persons.json"
        return json.loads(path.read_text()) if path.exists() else []

    # -------------------------------------------------------------------------------- env
    def dvza_env(self) -> dict[str, str]:
        from werkzeug.security import generate_password_hash

        env = dict(os.environ)
        env.update({
            "DVZA_INSTANCE_PATH": str(self.root),
            "DVZA_AANBIEDER_NAAM": self.aanbieder_naam,
            "DVZA_AANBIEDER_WEERGAVENAAM": self.aanbieder_weergavenaam,
            "DVZA_PUBLIC_HOSTNAME": self.host,
            "DVZA_PUBLIC_BASE_URL": self.fhir_base,
            "DVZA_LISTS_DIR": str(self.lists_dir),
            # the demo lists carry ports and .localhost names: not MedMij-valid, development only
            "DVZA_LISTS_DEVELOPMENT": "true",
            "DVZA_FRONTCHANNEL_SECURE_COOKIES": "true",
            # the persons log in with the development stand-in (not DigiD): switched on explicitly
            "DVZA_DEVELOPMENT_LOGIN": "true",
            # langdurige toestemming (MedMij R2, refresh tokens) on, so PGO vendors can try it
            "DVZA_LONG_TERM_CONSENT": "true",
            # the Nictiz qualification tokens and client qualification sessions (development network only)
            "DVZA_QUALIFICATION_MODE": os.environ.get("DVZA_QUALIFICATION_MODE", "true"),
        })
        if (self.root / "hospital-password").exists():
            env["DVZA_HOSPITAL_USERS"] = json.dumps(
                {HOSPITAL_USER: generate_password_hash(self.hospital_password())})
        persons = self.dev_persons()
        if persons:
            env["DVZA_DEV_LOGIN_PERSONS"] = json.dumps(persons)
        if (self.root / "digid" / "idp-metadata.xml").exists():
            from . import devnet_digid

            env.update(devnet_digid.saml_env(self))
        env.update(self.extra_env)
        return env

    def pgo_env(self) -> dict[str, str]:
        client = self.pki.clients[self.pgo_hostname]
        env = dict(os.environ)
        env.update({
            "PGO_NAME": self.pgo_name, "PGO_HOSTNAME": self.pgo_hostname,
            "PGO_REDIRECT_URI": f"{self.pgo_url}/callback",
            "PGO_CLIENT_CERT": str(client.cert), "PGO_CLIENT_KEY": str(client.key),
            "PGO_CA_BUNDLE": str(self.pki.ca_cert), "PGO_LISTS_DIR": str(self.lists_dir),
        })
        return env

    # ------------------------------------------------------------------------------- start
    def _gunicorn(self, app: str, port: int, env: dict[str, str], *, client_cert: str, workers: int,
                  name: str) -> subprocess.Popen[bytes]:
        from ..serving import gunicorn_args

        args = gunicorn_args(bind=f"127.0.0.1:{port}", workers=workers, certfile=str(self.pki.server_cert),
                             keyfile=str(self.pki.server_key), ca_certs=str(self.pki.ca_cert),
                             client_cert=client_cert, app=app)
        args[-1:-1] = ["--name", name]
        process = subprocess.Popen(args, env=env)
        self.processes.append(process)
        return process

    def start(self) -> None:
        from . import devnet_digid

        localnames.install()
        self.digid = devnet_digid.start(self)
        dvza_env = self.dvza_env()
        self._gunicorn("dvza:create_app()", self.front_port, dvza_env, client_cert="none", workers=self.workers,
                       name="dvza-front")
        self._gunicorn("dvza:create_app()", self.back_port, dvza_env, client_cert="required",
                       workers=self.workers, name="dvza-back")
        self._gunicorn("dvza.pgo:create_pgo_app()", self.pgo_port, self.pgo_env(), client_cert="none", workers=1,
                       name="pgo")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        client = self.pki.clients[self.pgo_hostname]
        checks = [(f"{self.front_url}/healthz", None), (f"{self.back_url}/healthz", (str(client.cert),
                                                                                     str(client.key))),
                  (f"{self.pgo_url}/healthz", None)]
        deadline = time.monotonic() + timeout
        for url, cert in checks:
            wait_until_answers(url, self.processes, timeout=max(0.0, deadline - time.monotonic()), cert=cert,
                               verify=str(self.pki.ca_cert))

    def stop(self) -> None:
        if self.digid is not None:
            self.digid.stop()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def wait(self) -> int:
        """Block until one process stops (or Ctrl-C / SIGTERM), then stop the others."""

        def terminate(signum: int, frame: t.Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, terminate)
        try:
            while all(p.poll() is None for p in self.processes):
                time.sleep(0.5)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()

    def banner(self) -> str:
        return "\n".join([
            "",
            "medmij-dvza development network is running:",
            f"  PGO simulator (open this):   {self.pgo_url}/",
            f"  DVZA frontchannel:           {self.front_url}/oauth/authorize",
            f"  DVZA backchannel (mTLS):     {self.back_url}/oauth/token, {self.fhir_base}",
            f"  Local DigiD (SAML, test):    https://digid.localhost:{self.digid_port}/saml/idp/metadata"
            "  (choose 'DigiD via SAML' at the DVZA's login)",
            f"  Hospital queue page:         {self.front_url}/ziekenhuis/wachtrij"
            f"  (name {HOSPITAL_USER}, password {self.hospital_password()})",
            f"  Client qualification (PGO vendors): {self.front_url}/ziekenhuis/kwalificatie"
            " or `dvza conformance client start --set bgz`",
            f"  Development CA (trust it or accept the warning): {self.pki.ca_cert}",
            "Stop with Ctrl-C.",
            "",
        ])
