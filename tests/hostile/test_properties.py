"""Property-based hostile input (issue 11): Hypothesis plays a hostile PGO for every Cert test patient
against every FHIR endpoint — searches, reads, ``$lastn``, raw documents, Module 2 bundles and Task
updates — built from the real ids of *other* patients' data, shared resources, urn references, junk
shapes and junk values. For every request it checks that

* the answer is never a 5xx;
* no resource of another patient appears in it (``tests/oracle.py`` says what the patient may see;
  what the request itself created belongs to the patient);
* a 4xx stored nothing (resources, versions, queue) and every request left one audit record;
* what a 2xx submission stored is invisible to every read — the own patient's included — until
  the hospital accepts it.

It runs in production mode (no qualification tokens or test writes), with ordinary access tokens for
all gegevensdiensten, on SQLite and in the PostgreSQL pass. ``DVZA_HYPOTHESIS_EXAMPLES`` sets the
number of examples per property (default 60).
"""

from __future__ import annotations

import base64
import collections
import copy
import json
import os
import re
import typing as t
import uuid
from datetime import date
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlalchemy import select

from dvza.devtools import testdata
from dvza.models import AuditRecord
from dvza.returnqueue.models import QueueItem
from fhir_api import compartment
from fhir_api import fhirjson
from fhir_api.models import ResourceRow
from fhir_api.search.params import params_for
from oauth.tokens import ACCESS
from oauth.tokens import store_token
from tests.oracle import Oracle
from tests.oracle import oracle_of
from tests.support import CERT_SETS
from tests.support import TOKENS
from tests.support import fixture_text
from tests.support import load_cert_data
from tests.support import make_app

EXAMPLES = int(os.environ.get("DVZA_HYPOTHESIS_EXAMPLES", "60"))
QUESTIONNAIRES = CERT_SETS["questionnaires"] / "_reference" / "resources" / "resources-specific"
SEEDS = [
    *(CERT_SETS["selfmeasurements"] / "_reference" / "resources-serve-receive" /
      f"medmij-selfmeasurements-serve-receive-scenario-2-{n}-bundle.json" for n in (1, 2, 3)),
    *(CERT_SETS["pdfa"] / "_reference" / "resources" / f"medmij-pdfa-Bundle-kwalificatie{n}.json" for n in (1, 2)),
    QUESTIONNAIRES / "medmij-questionnaires-vl-Transaction-XXX_Vink-PHQ9.json",
]
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
PATIENTS = sorted(TOKENS)
BASE = "http://localhost/fhir"
TYPES = ["Patient", "Observation", "Condition", "DocumentReference", "DocumentManifest", "Binary", "Task",
         "QuestionnaireResponse", "Questionnaire", "Practitioner", "Organization", "Specimen", "Device",
         "MedicationStatement", "Encounter", "Coverage", "AllergyIntolerance", "Flag"]
PDF = base64.b64encode(b"%PDF-1.4\n%hostile\n%%EOF\n").decode()
OUTCOMES: collections.Counter[tuple[int, int]] = collections.Counter()


class World:
    """The app, a token per patient, the stored ids by owner, and the visibility oracle."""

    def __init__(self, app: t.Any):
        self.app = app
        self.client = app.test_client()
        self.tokens: dict[str, str] = {}
        with app.extensions["dvza.db"].sessionmaker() as session:
            for patient in PATIENTS:
                value = f"prop-{uuid.uuid4()}"
                store_token(session, value, kind=ACCESS, patient_id=patient, client_id="pgo.example.nl",
                            gegevensdiensten=list(app.config["GEGEVENSDIENSTEN"]), lifetime=timedelta(hours=4))
                self.tokens[patient] = value
            session.commit()
            rows = session.execute(select(ResourceRow.resource_type, ResourceRow.logical_id,
                                          ResourceRow.patient_id)).all()
        self.keys = [(r[0], r[1]) for r in rows]
        self.owned = {p: [(r[0], r[1]) for r in rows if r[2] == p] for p in PATIENTS}
        self.shared = [(r[0], r[1]) for r in rows if r[2] is None]
        self.oracle: Oracle = oracle_of(app)
        self.visible = {p: self.oracle.visible(p) for p in PATIENTS}
        self.tasks = {p: [k[1] for k in self.owned[p] if k[0] == "Task"] for p in PATIENTS}

    def seeds(self, me: str) -> list[dict[str, t.Any]]:
        """Valid submissions of this patient (the Nictiz receive/provide/answer bundles, rewritten to
        the patient): mutated a little, they probe every rule; unmutated, they are accepted."""
        found = []
        for path in SEEDS:
            text = fixture_text(path, **{"task-id": (self.tasks[me] or ["no-task"])[0],
                                         "task-fullurl": f"{BASE}/Task/{(self.tasks[me] or ['no-task'])[0]}",
                                         "server-base": f"{BASE}/"})
            bundle = json.loads(text)
            patient_urls = {e.get("fullUrl") for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"}
            bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
            text = json.dumps(bundle)
            for url in filter(None, patient_urls):
                text = text.replace(f'"{url}"', f'"Patient/{me}"')
            text = re.sub(r'"(?:http://localhost/fhir/)?Patient/[A-Za-z0-9.-]+"', f'"Patient/{me}"', text)
            found.append(json.loads(text))
        return found

    def headers(self, patient: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[patient]}", **extra}

    def assert_stored_xml_is_xml(self, keys: t.Iterable[tuple[str, str]]) -> None:
        """What is stored is served as XML too: its rendering must be well-formed XML."""
        from lxml import etree

        with self.app.extensions["dvza.db"].sessionmaker() as session:
            for rtype, rid in keys:
                xml = session.scalar(select(ResourceRow.xml_text).where(ResourceRow.resource_type == rtype,
                                                                          ResourceRow.logical_id == rid))
                if xml is not None:
                    etree.fromstring(xml.encode())

    def state(self) -> tuple[int, int, int, int, int, int]:
        """(rows, sum of versions, visible rows, visible non-Task versions, queue items, audit records)."""
        visible = ResourceRow.hidden_by.is_(None)
        with self.app.extensions["dvza.db"].sessionmaker() as session:
            return (session.scalar(select(func.count()).select_from(ResourceRow)),
                    session.scalar(select(func.coalesce(func.sum(ResourceRow.version_id), 0))),
                    session.scalar(select(func.count()).select_from(ResourceRow).where(visible)),
                    session.scalar(select(func.coalesce(func.sum(ResourceRow.version_id), 0)).where(
                        visible, ResourceRow.resource_type != "Task")),
                    session.scalar(select(func.count()).select_from(QueueItem)),
                    session.scalar(select(func.count()).select_from(AuditRecord)))


@pytest.fixture(scope="module")
def world(databases: t.Any, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[World]:
    app = make_app(databases, tmp_path_factory, QUALIFICATION_MODE=False, LOG_LEVEL="ERROR")
    load_cert_data(app, "bgz", "pdfa", "questionnaires", "selfmeasurements")
    with app.extensions["dvza.db"].sessionmaker() as session:  # open questionnaire Tasks to answer
        testdata.create_tasks(session, sorted(QUESTIONNAIRES.glob("*-REQUESTED.xml")), today=date.today(),
                              close_open=False)
    yield World(app)
    if os.environ.get("DVZA_HYPOTHESIS_REPORT"):
        print("\noutcomes (request line, status class):", sorted(OUTCOMES.items()))
    app.extensions["dvza.db"].dispose()


# ----------------------------------------------------------------------------------- strategies
JUNK_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(
    ["", " ", "²", "-1", "1e9", "99999999999999999999", "null", "Patient/", "../Patient/x", "%00", "a" * 300,
     "http://evil.example/fhir/Patient/x", "urn:uuid:" + str(uuid.UUID(int=7)), "#contained", "ge2020",
     "0001-01-01T00:00+14:00", "9999-12-31", "http://loinc.org|", "|x", "\\,", "Binary/pdfa-binary1",
     "bell\x07", "nul\x00", "\ufffe", "tab\tnew\nline\r"]))  # characters XML cannot carry (and tab, CR, LF)
#: what a FHIR string may not hold and XML cannot carry
CONTROL_CHARACTERS = st.sampled_from(["\x00", "\x07", "\x0b", "\x1f", "\ufffe", "\uffff"])
JSON_JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), JUNK_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(JUNK_TEXT, inner, max_size=4)),
    max_leaves=12)


def reference_values(world: World, me: str, urns: list[str]) -> st.SearchStrategy[str]:
    others = [k for p, keys in world.owned.items() if p != me for k in keys]
    choices: list[st.SearchStrategy[str]] = [
        st.just(f"Patient/{me}"), st.just(f"{BASE}/Patient/{me}"),
        st.sampled_from([f"{k[0]}/{k[1]}" for k in others]),
        st.sampled_from([f"{BASE}/{k[0]}/{k[1]}" for k in others]),
        st.sampled_from([f"{k[0]}/{k[1]}" for k in world.shared]),
        st.sampled_from([f"{k[0]}/{k[1]}" for k in world.owned[me]] or [f"Patient/{me}"]),
        JUNK_TEXT,
    ]
    if urns:
        choices.append(st.sampled_from(urns))
    return st.one_of(*choices)


@st.composite
def resources(draw: st.DrawFn, world: World, me: str, urns: list[str]) -> dict[str, t.Any]:
    ref = reference_values(world, me, urns)
    kind = draw(st.sampled_from(["Observation", "Patient", "DocumentReference", "Binary", "DocumentManifest",
                                 "Task", "QuestionnaireResponse", "Practitioner", "Condition", "junk"]))
    if kind == "junk":
        return t.cast(dict[str, t.Any], draw(st.dictionaries(JUNK_TEXT, JSON_JUNK, max_size=4)))
    if kind == "Observation":
        resource: dict[str, t.Any] = {
            "resourceType": "Observation", "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/zib-BodyWeight"]},
            "status": "final",
            "category": [{"coding": [{"system": "http://hl7.org/fhir/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
            "subject": {"reference": draw(ref)}, "effectiveDateTime": "2024-05-01T10:00:00+02:00",
            "valueQuantity": {"value": draw(st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=2),
                                                      st.integers(), JUNK_TEXT)),
                              "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        }
        if draw(st.booleans()):
            resource["related"] = [{"type": "has-member", "target": {"reference": draw(ref)}}]
        if draw(st.booleans()):
            resource["performer"] = [{"reference": draw(ref)}]
    elif kind == "Patient":
        resource = {"resourceType": "Patient", "name": [{"family": draw(JUNK_TEXT)}],
                    "identifier": draw(st.sampled_from([[], [{"system": "http://fhir.nl/fhir/NamingSystem/bsn",
                                                               "value": "999911120"}]]))}
    elif kind == "DocumentReference":
        resource = {"resourceType": "DocumentReference",
                    "meta": {"profile": ["http://ihe.net/fhir/StructureDefinition/IHE.MHD.Minimal.DocumentReference"]},
                    "status": "current", "indexed": "2024-05-01T10:00:00+02:00",
                    "type": {"coding": [{"system": "http://loinc.org", "code": "34133-9", "display": "Samenvatting"}]},
                    "subject": {"reference": draw(ref)},
                    "content": [{"attachment": {"contentType": "application/pdf", "url": draw(ref), "title": "x"}}]}
    elif kind == "Binary":
        resource = {"resourceType": "Binary", "contentType": draw(st.sampled_from(["application/pdf", "text/html"])),
                    "content": draw(st.sampled_from([PDF, "***", ""]))}
    elif kind == "DocumentManifest":
        resource = {"resourceType": "DocumentManifest", "status": "current", "subject": {"reference": draw(ref)},
                    "content": [{"pReference": {"reference": draw(ref)}}]}
    elif kind == "Task":
        resource = {"resourceType": "Task", "status": draw(st.sampled_from(["accepted", "completed", "rejected"])),
                    "intent": "order", "for": {"reference": draw(ref)},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "74468-0"}]},
                    "output": [{"type": {"text": "QuestionnaireResponse"}, "valueReference": {"reference": draw(ref)}}]}
    elif kind == "QuestionnaireResponse":
        resource = {"resourceType": "QuestionnaireResponse", "status": "completed",
                    "questionnaire": {"reference": draw(ref)}, "subject": {"reference": draw(ref)},
                    "item": [{"linkId": draw(JUNK_TEXT), "answer": [{"valueString": "x"}]}]}
    elif kind == "Practitioner":
        resource = {"resourceType": "Practitioner", "name": [{"family": "Kwaad"}]}
    else:
        resource = {"resourceType": "Condition", "subject": {"reference": draw(ref)},
                    "code": {"text": "hostile"}}
    if draw(st.booleans()):
        resource["id"] = draw(st.one_of(st.sampled_from([k[1] for k in world.keys]), JUNK_TEXT))
    return resource


def _references_in(node: t.Any) -> list[tuple[dict[str, t.Any], str]]:
    """(holder, key) of the literal references in ``node``: Reference.reference and Attachment.url."""
    return _holders(node, lambda holder, key, value: isinstance(value, str) and (
        key == "reference" or (key == "url" and "contentType" in holder)))


Holders = list[tuple[dict[str, t.Any], str]]


def _holders(node: t.Any, wanted: t.Callable[[dict[str, t.Any], str, t.Any], bool]) -> Holders:
    """(holder, key) of every property in ``node`` that ``wanted`` picks (not looking further into those)."""
    found: list[tuple[dict[str, t.Any], str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if wanted(node, key, value):
                found.append((node, key))
            else:
                found += _holders(value, wanted)
    elif isinstance(node, list):
        for item in node:
            found += _holders(item, wanted)
    return found


@st.composite
def mutated_seeds(draw: st.DrawFn, world: World, me: str) -> t.Any:
    """A valid submission of ``me`` with 0–3 hostile mutations."""
    bundle = copy.deepcopy(draw(st.sampled_from(world.seeds(me))))
    urns = [e.get("fullUrl") for e in bundle["entry"] if isinstance(e.get("fullUrl"), str)]
    hostile = reference_values(world, me, urns)
    for _ in range(draw(st.integers(0, 3))):
        entries = bundle["entry"]
        if not entries:
            break
        entry = entries[draw(st.integers(0, len(entries) - 1))]
        action = draw(st.sampled_from(["reference", "reference", "method", "id", "drop", "duplicate", "junk",
                                       "type", "attachment", "text", "text"]))
        references = _references_in(entry.get("resource"))
        if action == "reference" and references:
            holder, key = references[draw(st.integers(0, len(references) - 1))]
            holder[key] = draw(hostile)
        elif action == "method":
            target = draw(st.one_of(st.sampled_from(world.keys), st.just(("X", f"new-{uuid.uuid4().hex[:12]}"))))
            entry["request"] = {"method": draw(st.sampled_from(["PUT", "GET", "DELETE", "PATCH", "put"])),
                                "url": f"{entry['resource'].get('resourceType')}/{target[1]}"}
            entry["resource"]["id"] = target[1]
        elif action == "id":
            entry["resource"]["id"] = draw(st.sampled_from(world.keys))[1]
        elif action == "drop":
            entries.remove(entry)
        elif action == "duplicate":
            entries.append(copy.deepcopy(entry))
        elif action == "junk":
            resource = entry["resource"]
            resource[draw(st.sampled_from(sorted(resource)))] = draw(JSON_JUNK)
        elif action == "text":  # a well-placed string with hostile characters (kept: the rest stays valid)
            texts = _texts_in(entry.get("resource"))
            if texts:
                holder, key = texts[draw(st.integers(0, len(texts) - 1))]
                holder[key] = holder[key] + draw(st.one_of(JUNK_TEXT, CONTROL_CHARACTERS))
        elif action == "type":
            bundle["type"] = draw(st.sampled_from(["batch", "transaction", "document", "searchset"]))
        elif action == "attachment":
            for holder, key in references:
                if key == "url":
                    holder[key] = draw(st.sampled_from([f"Binary/{k[1]}" for k in world.keys if k[0] == "Binary"]))
    return bundle


def _texts_in(node: t.Any) -> list[tuple[dict[str, t.Any], str]]:
    """(holder, key) of the free-text strings in ``node`` (display, text, comment, valueString, title)."""
    return _holders(node, lambda _holder, key, value: isinstance(value, str) and key in (
        "display", "text", "comment", "valueString", "title"))


@st.composite
def bundles(draw: st.DrawFn, world: World, me: str) -> t.Any:
    roll = draw(st.integers(0, 9))
    if roll == 0:
        return draw(JSON_JUNK)
    if roll >= 4:
        return draw(mutated_seeds(world, me))
    count = draw(st.integers(0, 5))
    urns = [f"urn:uuid:{uuid.UUID(int=i + 1)}" for i in range(count)]
    entries: list[t.Any] = []
    for index in range(count):
        if draw(st.integers(0, 12)) == 0:
            entries.append(draw(JSON_JUNK))
            continue
        resource = draw(resources(world, me, urns))
        rtype = resource.get("resourceType") if isinstance(resource.get("resourceType"), str) else "X"
        method = draw(st.sampled_from(["POST", "POST", "PUT", "GET", "DELETE", "post", 7, None]))
        target = draw(st.sampled_from([k for k in world.keys if k[0] == rtype] or [(rtype, "none")]))
        url = draw(st.sampled_from([rtype, f"{rtype}/{target[1]}", f"{rtype}/{resource.get('id', 'x')}", ""]))
        entry: dict[str, t.Any] = {"fullUrl": draw(st.one_of(st.just(urns[index]), JUNK_TEXT)), "resource": resource,
                                   "request": {"method": method, "url": url}}
        if draw(st.integers(0, 10)) == 0:
            entry["request"] = draw(JSON_JUNK)
        entries.append(entry)
    bundle: dict[str, t.Any] = {"resourceType": "Bundle", "type": draw(st.sampled_from(
        ["batch", "transaction", "batch", "searchset", 3])), "entry": entries}
    if draw(st.integers(0, 10)) == 0:
        bundle["entry"] = draw(JSON_JUNK)
    return bundle


@st.composite
def searches(draw: st.DrawFn, world: World, me: str) -> str:
    rtype = draw(st.sampled_from(TYPES + ["Observation/$lastn", "Nonsense", "A" * 70]))
    known = list(params_for(rtype.split("/")[0]) if rtype[0].isupper() and len(rtype) < 64 else {})
    others = [k for p, keys in world.owned.items() if p != me for k in keys]
    names = st.sampled_from(known + ["_count", "_offset", "_include", "_revinclude", "_sort", "_summary", "max",
                                     "patient", "subject", "_id", "identifier", "junk", "code:not",
                                     "date:missing", "_format"] or ["_count"])
    values = st.one_of(
        JUNK_TEXT, st.sampled_from([f"{k[0]}/{k[1]}" for k in others]), st.sampled_from([k[1] for k in others]),
        st.sampled_from(["Observation:subject", "Observation:specimen", "DocumentReference:subject:Patient",
                         "Condition:asserter", "*", "MedicationStatement:medication", "json", "xml"]),
        st.sampled_from(["http://fhir.nl/fhir/NamingSystem/bsn|999911120", "http://loinc.org|85354-9",
                         "vital-signs", "ge2000", "le2100-01-01", "eq2020-13-45", "count"]))
    params = draw(st.lists(st.tuples(names, values), max_size=5))
    return rtype + ("?" + "&".join(f"{quote(n)}={quote(v)}" for n, v in params) if params else "")


# ------------------------------------------------------------------------------------ checking
def served_keys(response: t.Any) -> list[tuple[str, str]]:
    """Every (type, id) of a resource in a FHIR JSON answer: the resource itself or a Bundle's entries
    (contained resources are part of their container and have no identity of their own)."""
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return []
    nodes = [e.get("resource") for e in body.get("entry", []) if isinstance(e, dict)] \
        if body.get("resourceType") == "Bundle" else [body]
    return [(n["resourceType"], n["id"]) for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str)]


def check_isolation(world: World, me: str, response: t.Any, created: set[tuple[str, str]]) -> None:
    allowed = world.visible[me] | created
    for key in served_keys(response):
        if key[0] in ("Bundle", "OperationOutcome") or key in allowed:
            continue
        resource = next((e for e in _resources(response) if (e.get("resourceType"), e.get("id")) == key), None)
        owner = compartment.owner(resource) if resource and compartment.is_patient_data(key[0]) else None
        raise AssertionError(f"{me} was served {key} (owner {owner!r})")


def _resources(response: t.Any) -> list[dict[str, t.Any]]:
    body = response.get_json(silent=True) or {}
    return [e.get("resource") or {} for e in body.get("entry", []) if isinstance(e, dict)] + [body]


def request_checked(world: World, me: str, send: t.Callable[[], t.Any]) -> t.Any:
    before = world.state()
    response = send()
    after = world.state()
    assert response.status_code < 500, response.get_data(as_text=True)[:800]
    event(f"status {response.status_code}")
    OUTCOMES[(send.__code__.co_firstlineno, response.status_code // 100)] += 1
    assert after[5] == before[5] + 1, "every request leaves exactly one audit record"
    if 400 <= response.status_code < 500:
        assert after[:5] == before[:5], f"a {response.status_code} changed the data: {before} -> {after}"
    else:  # the only visible change a PGO may make at once is a questionnaire Task's status
        assert after[2:4] == before[2:4], "nothing a PGO sends becomes visible before acceptance"
    return response


# ----------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("me", PATIENTS)
def test_hostile_searches(world: World, me: str) -> None:
    @PROPERTY
    @given(query=searches(world, me), fmt=st.sampled_from(["application/fhir+json", "*/*"]))
    def run(query: str, fmt: str) -> None:
        response = request_checked(world, me, lambda: world.client.get(
            f"/fhir/{query}", headers=world.headers(me, Accept=fmt)))
        check_isolation(world, me, response, set())

    run()


@pytest.mark.parametrize("me", PATIENTS)
def test_hostile_reads(world: World, me: str) -> None:
    @PROPERTY
    @given(key=st.one_of(st.sampled_from(world.keys), st.tuples(st.sampled_from(TYPES), JUNK_TEXT)),
           raw=st.booleans())
    def run(key: tuple[str, str], raw: bool) -> None:
        accept = "application/octet-stream" if raw else "application/fhir+json"
        response = request_checked(world, me, lambda: world.client.get(
            f"/fhir/{key[0]}/{quote(key[1], safe='')}", headers=world.headers(me, Accept=accept)))
        if response.status_code == 200:
            assert (key[0], key[1]) in world.visible[me], f"{me} read {key}"
        check_isolation(world, me, response, set())

    run()


@pytest.mark.parametrize("me", PATIENTS)
def test_hostile_submissions(world: World, me: str) -> None:
    queue = world.app.extensions["dvza.queue"]
    others_documents = [k for k in world.keys if k[0] == "Binary" and k not in world.visible[me]]

    @PROPERTY
    @given(bundle=bundles(world, me), fmt=st.sampled_from(["json", "json", "xml"]), accept=st.booleans())
    def run(bundle: t.Any, fmt: str, accept: bool) -> None:
        if fmt == "xml":
            from fhir_api import formats

            try:
                body = formats.render(bundle, "xml") if isinstance(bundle, dict) else "<x/>"
            except Exception:  # noqa: BLE001 - junk that has no XML form is sent as junk text
                body = "<Bundle xmlns='http://hl7.org/fhir'><junk/></Bundle>"
        else:
            body = json.dumps(bundle, default=str)
        mime = f"application/fhir+{fmt}"
        response = request_checked(world, me, lambda: world.client.post("/fhir/", data=body, headers=world.headers(
            me, **{"Content-Type": mime, "Accept": "application/fhir+json", "MedMij-Request-ID": str(uuid.uuid4())})))
        created = set()
        if response.status_code < 300:
            for entry in response.get_json().get("entry", []):
                resource = entry.get("resource") or {}
                key = (resource.get("resourceType"), resource.get("id"))
                created.add(key)
                if compartment.is_patient_data(key[0]) and key[0] != "Patient":
                    assert compartment.owner(resource) == me
                if entry["response"]["status"].startswith("201"):  # new: hidden from every read
                    for reader in (me, *[p for p in PATIENTS if p != me][:2]):
                        assert world.client.get(f"/fhir/{key[0]}/{key[1]}",
                                                headers=world.headers(reader)).status_code == 404
        check_isolation(world, me, response, created)
        world.assert_stored_xml_is_xml(created)
        if response.status_code < 300 and accept:  # the hospital accepts: the data joins the record
            [item] = queue.list(status="new", patient_id=me, limit=1)
            queue.claim_item(item.id, "epd")
            queue.accept(item.id, "epd")
            world.visible[me] |= created
            for rtype, rid in created:
                if rtype == "Binary":  # a document is readable once its DocumentReference is
                    assert world.client.get(f"/fhir/Binary/{rid}", headers=world.headers(me)).status_code == 200
            for rtype, rid in others_documents:  # and never opens another patient's document
                assert world.client.get(f"/fhir/{rtype}/{rid}", headers=world.headers(
                    me, Accept="*/*")).status_code == 404, f"{me} reached {rid} after acceptance"

    run()


@pytest.mark.parametrize("me", PATIENTS)
def test_a_control_character_in_any_text_is_refused(world: World, me: str) -> None:
    """FHIR strings hold no control characters but tab, CR and LF, and XML cannot carry them: JSON can, so a
    valid submission with one in any of its free-text strings is refused whole and stores nothing."""

    @PROPERTY
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        bundle = copy.deepcopy(data.draw(st.sampled_from(world.seeds(me))))
        texts = [t_ for e in bundle["entry"] for t_ in _texts_in(e.get("resource"))]
        if not texts:
            return
        holder, key = texts[data.draw(st.integers(0, len(texts) - 1))]
        holder[key] = holder[key] + data.draw(CONTROL_CHARACTERS)
        response = request_checked(world, me, lambda: world.client.post("/fhir/", data=json.dumps(bundle), headers=
            world.headers(me, **{"Content-Type": "application/fhir+json", "MedMij-Request-ID": str(uuid.uuid4())})))
        assert 400 <= response.status_code < 500, (key, response.get_data(as_text=True)[:500])

    run()


@pytest.mark.parametrize("me", PATIENTS)
def test_hostile_task_updates(world: World, me: str) -> None:
    tasks = [k for k in world.keys if k[0] == "Task"]

    @PROPERTY
    @given(target=st.sampled_from(tasks or [("Task", "none")]), status=st.sampled_from(
        ["accepted", "rejected", "completed", "failed", "cancelled", "bogus"]), junk=st.booleans())
    def run(target: tuple[str, str], status: str, junk: bool) -> None:
        with world.app.extensions["dvza.db"].sessionmaker() as session:
            text = session.scalar(select(ResourceRow.json_text).where(ResourceRow.resource_type == "Task",
                                                                      ResourceRow.logical_id == target[1]))
        task = fhirjson.loads(text) if text else {"resourceType": "Task", "id": target[1]}
        task["status"] = status
        if junk:
            task["for"] = {"reference": f"Patient/{me}"}
            task["owner"] = {"reference": "Patient/someone-else"}
        response = request_checked(world, me, lambda: world.client.put(
            f"/fhir/Task/{target[1]}", data=fhirjson.dumps(task),
            headers=world.headers(me, **{"Content-Type": "application/fhir+json"})))
        if response.status_code < 300:
            assert target in world.visible[me], f"{me} changed {target}"
        check_isolation(world, me, response, set())

    run()
