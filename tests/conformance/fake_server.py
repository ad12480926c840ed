"""A small fake FHIR STU3 server for the runner's own tests: canned, realistic answers for the
handwritten ``scripts/all-kinds-json.xml``; ``app.config["BREAK"]`` makes it answer one thing wrong."""

from __future__ import annotations

import json
import threading
import typing as t
from datetime import date
from datetime import timedelta

from flask import Flask
from flask import Response
from flask import request
from werkzeug.serving import make_server

TOKEN = "Bearer nictiz-token"


def _json(body: t.Any, status: int = 200, ctype: str = "application/fhir+json", **headers: str) -> Response:
    return Response(json.dumps(body), status=status, content_type=ctype, headers=headers)


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(BREAK=None, TOKEN=TOKEN, seen=[])

    def broken(kind: str) -> bool:
        return app.config["BREAK"] == kind

    @app.before_request
    def auth() -> Response | None:
        app.config["seen"].append((request.method, request.full_path, dict(request.headers)))
        if request.path.endswith("/Binary/doc1") and "Authorization" not in request.headers:
            return Response("", status=404 if broken("warn") else 401)
        if request.headers.get("Authorization") != app.config["TOKEN"]:
            return _json({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}, 401)
        return None

    @app.get("/fhir/Patient")
    def search() -> Response:
        base = request.host_url + "fhir/"
        query = request.query_string.decode()
        self_query = query if not broken("selflink") else "name=Test"
        entries = [{"fullUrl": base + "Patient/p1", "resource": {"resourceType": "Patient", "id": "p1"},
                    "search": {"mode": "match"}}]
        if broken("expr-bool"):
            entries.append({"fullUrl": base + "Patient/p2", "resource": {"resourceType": "Patient", "id": "p2"}})
        bundle = {"resourceType": "Bundle", "type": "collection" if broken("expr-value") else "searchset",
                  "total": "many" if broken("validate") else len(entries),
                  "link": [{"relation": "self", "url": f"{base}Patient?{self_query}"}], "entry": entries}
        return _json(bundle, 203 if broken("rc-in") else 200,
                     "application/json" if broken("header") else "application/fhir+json")

    @app.get("/fhir/Patient/p1")
    def read_patient() -> Response:
        gender = "female" if broken("underscore") else "male"
        family = "Other" if broken("compare") else "Test"
        birth = "1980-01-01" if broken("minimum") else "1970-01-01"
        rtype = "Patient"
        profile = "http://example.org/other" if broken("profile") else \
            "http://fhir.nl/fhir/StructureDefinition/nl-core-patient"
        xml = (f'<{rtype} xmlns="http://hl7.org/fhir"><id value="p1"/><meta><profile value="{profile}"/></meta>'
               f'<name><family value="{family}"/></name>'
               f'<gender value="{gender}"><extension url="http://example.org/code"><valueCode value="M"/></extension>'
               '</gender>'
               f'<birthDate value="{birth}"/></{rtype}>')
        ctype = "text/xml" if broken("contentType") else "application/fhir+xml;charset=utf-8"
        if "xml" not in request.headers.get("Accept", ""):
            return Response("not acceptable", status=406)
        return Response(xml, status=203 if broken("response") else 200, content_type=ctype, headers={"ETag": 'W/"1"'})

    @app.get("/fhir/Task/t1")
    def read_task() -> Response:
        task = {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">t</div>"}}
        if broken("rewrite"):
            two = [{"resource": task}, {"resource": task}]
            return _json({"resourceType": "Bundle", "type": "searchset", "entry": two})
        return _json(task)

    @app.put("/fhir/Task/t1")
    def update_task() -> Response:
        if request.headers.get("If-Match") != 'W/"1"' or request.content_type != "application/fhir+json":
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "conflict"}]}
            return _json(outcome, 412)
        task = request.get_json(force=True)
        if broken("echo"):
            task["status"] = "requested"
        return _json(task, 201 if broken("rc-equals") else 200)

    @app.post("/fhir/Patient")
    def create() -> Response:
        body = request.get_data(as_text=True)
        expected = (date.today().replace(year=date.today().year - 30)).isoformat()
        if request.content_type != "application/fhir+xml" or f'value="{expected}"' not in body:
            return _json({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}, 400)
        headers = {} if broken("location") else {"Location": request.host_url + "fhir/Patient/new/_history/1"}
        return _json({"resourceType": "Patient", "id": "new"}, 200 if broken("created") else 201, **headers)

    @app.post("/fhir")
    def transaction() -> Response:
        bundle = request.get_json(force=True)
        kind = bundle.get("type")
        if kind == "transaction":
            yesterday = (date.today() - timedelta(days=1)).isoformat()
            ok = bundle["entry"][0]["resource"]["effectiveDateTime"] == yesterday and \
                "${" not in bundle["entry"][0]["fullUrl"]
            return _json({"resourceType": "Bundle", "type": "batch-response" if broken("tx-type") else
                          "transaction-response", "entry": [{"response": {"status": "201 Created"}}]},
                         500 if broken("rc-notin") or not ok else 200)
        if broken("resource"):
            return _json({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]})
        return _json({"resourceType": "Bundle", "type": "batch-response", "entry": []}, 500 if broken("rc-notequals")
                     else 200)

    @app.delete("/fhir/Patient/p1")
    def delete() -> Response:
        return Response("", status=405 if broken("delete-rc") else 204)

    @app.get("/fhir/Binary/doc1")
    def document() -> Response:
        if "Accept" in request.headers:
            return Response("Accept header was sent", status=406)
        return Response(b"%PDF-1.4", status=200, content_type="text/plain" if broken("pdf") else "application/pdf")

    @app.post("/fhir/Patient/p1/$purge")
    def purge() -> Response:
        return Response("", status=204)

    return app


class FakeServer:
    """The fake app on a free port in a background thread."""

    def __init__(self) -> None:
        self.app = create_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
