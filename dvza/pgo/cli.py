"""``dvza pgo``: the PGO simulator from the command line.

Settings as the web app (``PGO_HOSTNAME``, ``PGO_CLIENT_CERT``/``PGO_CLIENT_KEY``, ``PGO_CA_BUNDLE``,
``PGO_LISTS_DIR``, ``PGO_REDIRECT_URI``) or options. Every command logs in through the DVZA's
development login with ``--bsn`` (test environments only); against any other DVZA, print the URL with
``authorize-url``, log in in a browser and pass the ``code`` from the redirect with ``--code``.

* ``fetch`` — Verzamelen: BgZ (48), documents (51), measurements (52); only what the token grants;
* ``send`` — measurements (53), several in one batch; ``send-documents`` — PDFs (57);
* ``questionnaires`` — the open questionnaire tasks (59); ``answer`` — accept and answer one (59, then 60)
  or decline it.
"""

from __future__ import annotations

import json
import os
import sys
import typing as t
from datetime import date
from datetime import datetime
from pathlib import Path

import click
import requests

from . import measurements as ms
from . import questionnaires as qs
from .catalog import Catalog
from .catalog import find
from .client import Aanbieder
from .client import PgoClient
from .client import PgoError
from .client import TokenGrant
from .content import batch_outcome
from .content import fetch_bgz
from .content import fetch_measurements
from .documents import DocumentError
from .documents import document_bundle
from .documents import fetch_documents
from .documents import open_document

#: what each command can ask for (Verzamelen / Delen ids as the simulator uses them)
FETCHABLE = {"48": "BgZ", "51": "documents", "52": "measurements"}
OTHER_COMMANDS = {"53": "send", "57": "send-documents", "59": "questionnaires", "60": "answer"}


def _env(name: str) -> t.Callable[[], str | None]:
    return lambda: os.environ.get(name)


def _options(function: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    for option in reversed([
        click.option("--hostname", default=_env("PGO_HOSTNAME"), required=True, help="The PGO's hostname (client_id)."),
        click.option("--cert", default=_env("PGO_CLIENT_CERT"), help="Client certificate (PEM)."),
        click.option("--key", default=_env("PGO_CLIENT_KEY"), help="Its private key (PEM)."),
        click.option("--ca", default=_env("PGO_CA_BUNDLE"),
                     help="CA bundle for the DVZA's certificates (development network: var/pki/ca.pem)."),
        click.option("--lists", "lists_dir", default=_env("PGO_LISTS_DIR"), required=True,
                     help="Folder with the ZAL and GNL."),
        click.option("--redirect-uri", default=_env("PGO_REDIRECT_URI"),
                     help="Default: the simulator's callback from the lists folder (demo-network.json), else "
                          "https://HOSTNAME/callback."),
        click.option("--aanbieder", "aanbieder_naam", help="Zorgaanbiedernaam (default: the only/first one)."),
    ]):
        function = option(function)
    return function


def _login_options(function: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    function = click.option("--code", help="An authorization code obtained in a browser (see authorize-url).")(function)
    return click.option("--bsn", help="Log in through the development login as this person.")(function)


def default_redirect_uri(lists_dir: str, hostname: str) -> str | None:
    """The simulator's callback as the development network wrote it next to its lists."""
    path = Path(lists_dir) / "demo-network.json"
    try:
        pgo = json.loads(path.read_text(encoding="utf-8")).get("pgo") or {}
    except (OSError, ValueError):
        return None
    return pgo.get("redirect_uri") if pgo.get("hostname") == hostname else None


def _setup(hostname: str, cert: str | None, key: str | None, ca: str | None, lists_dir: str,
           redirect_uri: str | None, aanbieder_naam: str | None) -> tuple[PgoClient, Catalog, Aanbieder]:
    from .lists import catalog_from_lists

    catalog = catalog_from_lists(lists_dir)
    try:
        aanbieders = catalog.aanbieders()
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"the lists in {lists_dir} cannot be read: {exc}") from None
    aanbieder = find(catalog, aanbieder_naam) if aanbieder_naam else (aanbieders[0] if aanbieders else None)
    if aanbieder is None:
        raise click.ClickException(f"aanbieder {aanbieder_naam or '(any)'} is not on the ZAL in {lists_dir}")
    client = PgoClient.configured(hostname, cert=cert, key=key, ca=ca,
                                  redirect_uri=redirect_uri or default_redirect_uri(lists_dir, hostname))
    return client, catalog, aanbieder


def _token(client: PgoClient, aanbieder: Aanbieder, diensten: list[str], bsn: str | None, code: str | None, *,
           long_term: bool = False) -> TokenGrant:
    """Log in (development login) or take ``--code``, and swap the code for a token over mutual TLS."""
    if not code:
        if not bsn:
            raise click.ClickException("give --bsn (development login) or --code (from a browser, see authorize-url)")
        from .frontchannel import authorize_with_dev_login

        try:
            answer = authorize_with_dev_login(client.authorize_url(aanbieder, diensten), bsn=bsn,
                                              verify=client.ca_bundle, redirect_prefix=client.redirect_uri,
                                              long_term=long_term)
        except requests.exceptions.SSLError as exc:
            raise click.ClickException(f"TLS to {aanbieder.authorize_url} failed ({exc.__class__.__name__}); is the "
                                       "DVZA's CA in --ca (development network: var/pki/ca.pem)?") from None
        except (requests.RequestException, PgoError) as exc:
            raise click.ClickException(f"the login at the DVZA failed: {exc}") from None
        if "error" in answer:
            raise click.ClickException(f"authorization refused: {answer['error']} "
                                       f"{answer.get('error_description', '')}".strip())
        code = answer["code"]
    try:
        return client.exchange_code(aanbieder, code)
    except PgoError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("pgo", help="A PGO simulator: fetch data from a DVZA, send measurements, documents and answers.")
def pgo_group() -> None:
    pass


@pgo_group.command("authorize-url", help="Print the URL that starts the flow in a browser.")
@_options
@click.option("--dienst", "diensten", multiple=True, default=["48"], show_default=True)
def authorize_url(diensten: tuple[str, ...], **settings: t.Any) -> None:
    client, _, aanbieder = _setup(**settings)
    click.echo(client.authorize_url(aanbieder, list(diensten)))
    command = "fetch" if all(d in FETCHABLE for d in diensten) else OTHER_COMMANDS.get(diensten[0], "fetch")
    click.echo(f"Open it in a browser, log in and consent. The browser then goes to {client.redirect_uri}?code=…: "
               f"pass that code on with `dvza pgo {command} --code CODE "
               f"{' '.join('--dienst ' + d for d in diensten) if command == 'fetch' else ''}` "
               "(same --hostname/--redirect-uri) within 15 minutes.", err=True)


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@pgo_group.command("fetch", help="Get a token and fetch BgZ (48), documents (51) and/or measurements (52).")
@_options
@click.option("--dienst", "diensten", multiple=True, default=["48"], show_default=True)
@_login_options
@click.option("--since", help="Documents indexed / measurements taken from this date (YYYY-MM-DD).")
@click.option("--until", help="… up to and including this date.")
@click.option("--kind", type=click.Choice([ms.ALL, ms.MAIN, *ms.KINDS]), default=ms.ALL, show_default=True,
              help="Which measurements (52): all vital signs, the four focus measurements, or one kind.")
@click.option("--latest", is_flag=True, help="Only the latest measurement per kind (Observation/$lastn).")
@click.option("--open", "open_numbers", type=int, multiple=True, help="Open document N (1-based) of the list.")
@click.option("--save", type=click.Path(file_okay=False, path_type=Path), help="Save opened documents here.")
@click.option("--long-term", is_flag=True, help="Consent for an unlimited time; then fetch again with the "
                                                 "refresh token (langdurige toestemming, when the DVZA offers it).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (counts and resources).")
def fetch(diensten: tuple[str, ...], bsn: str | None, code: str | None, since: str | None, until: str | None,
          kind: str, latest: bool, open_numbers: tuple[int, ...], save: Path | None, long_term: bool, as_json: bool,
          **settings: t.Any) -> None:
    wrong = [d for d in diensten if d not in FETCHABLE]
    if wrong:
        other = OTHER_COMMANDS.get(wrong[0])
        raise click.ClickException(f"gegevensdienst {wrong[0]} is not fetched: "
                                   + (f"use `dvza pgo {other}`" if other else f"fetch takes {', '.join(FETCHABLE)}"))
    client, _, aanbieder = _setup(**settings)
    grant = _token(client, aanbieder, list(diensten), bsn, code, long_term=long_term)
    granted = grant.granted(diensten)
    refused = [d for d in diensten if d not in granted]
    if refused:
        click.echo(f"note: the DVZA granted {' '.join(granted) or 'nothing'} of {' '.join(diensten)}; "
                   f"not fetched: {' '.join(refused)}", err=True)
    try:
        out = _fetch(client, aanbieder, grant.access_token, granted, since=_date(since), until=_date(until),
                     kind=kind, latest=latest)
        documents = out.pop("_documents", [])
        for number in open_numbers:
            if not 1 <= number <= len(documents):
                raise click.ClickException(f"there is no document {number} (there are {len(documents)})")
            try:
                content, content_type = open_document(client, aanbieder, grant.access_token, documents[number - 1])
                out.setdefault("opened", []).append({"number": number, "bytes": len(content), "type": content_type})
                if save:
                    save.mkdir(parents=True, exist_ok=True)
                    (save / f"document-{number}.pdf").write_bytes(content)
            except PgoError as exc:
                out.setdefault("opened", []).append({"number": number, "error": str(exc)})
        if long_term:
            if not grant.refresh_token:
                click.echo("note: no refresh token: the DVZA does not offer langdurige toestemming", err=True)
            else:
                again = client.refresh(aanbieder, grant.refresh_token)
                out["long_term"] = {"refreshed": True, "granted": again.granted(diensten)}
    except PgoError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(out, indent=1, ensure_ascii=False))
        return
    _print(out)


def _fetch(client: PgoClient, aanbieder: Aanbieder, token: str, granted: list[str], *, since: date | None,
           until: date | None, kind: str, latest: bool) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {"granted": granted, "sections": [], "documents": [], "sets": []}
    if "48" in granted:
        out["sections"] = [{"title": s.title, "count": len(s.resources), "lines": s.lines, "problems": s.problems}
                           for s in fetch_bgz(client, aanbieder, token)]
    if "51" in granted:
        view = fetch_documents(client, aanbieder, token, since=since, until=until, with_sets=not (since or until))
        out["documents"] = [{"title": d.title, "date": d.date, "url": d.url} for d in view.documents]
        out["sets"] = [{"title": s.title, "date": s.date, "documents": [d.title for d in s.documents],
                        "problems": s.problems} for s in view.sets]
        out["_documents"] = view.all()
    if "52" in granted:
        query = ms.search_query(kind, latest=latest, since=since, until=until)
        out["measurements"] = {"query": query, "lines": fetch_measurements(client, aanbieder, token, query)}
    return out


def _print(out: dict[str, t.Any]) -> None:
    for section in out["sections"]:
        click.echo(f"== {section['title']} ({section['count']})")
        for line in section["lines"]:
            click.echo(f"   {line}")
        for problem in section["problems"]:
            click.echo(f"   ! {problem}")
    for number, document in enumerate(out["documents"], start=1):
        click.echo(f"document {number}: {document['title']} {document['date']} {document['url']}")
    for doc_set in out["sets"]:
        click.echo(f"document set: {doc_set['title']} {doc_set['date']}: {', '.join(doc_set['documents'])}")
    for opened in out.get("opened", []):
        click.echo(f"opened document {opened['number']}: " + (f"{opened['bytes']} bytes {opened['type']}"
                                                              if "bytes" in opened else opened["error"]))
    if "measurements" in out:
        click.echo(f"== measurements ({out['measurements']['query']})")
        for line in out["measurements"]["lines"]:
            click.echo(f"   {line}")
    if "long_term" in out:
        click.echo("langdurige toestemming: fetched a new access token with the refresh token")


@pgo_group.command("send", help="Get a token for 53 and send measurements in one batch.")
@_options
@click.option("--measurement", "specs", multiple=True,
              help="kind=value[@when]: bloeddruk=120/80, gewicht=72.5, glucose=5.4, hartslag=64 (repeatable).")
@click.option("--systolic", type=int)
@click.option("--diastolic", type=int)
@click.option("--dienst", default="53", show_default=True)
@_login_options
def send(specs: tuple[str, ...], systolic: int | None, diastolic: int | None, dienst: str, bsn: str | None,
         code: str | None, **settings: t.Any) -> None:
    try:
        measurements = [ms.parse(spec) for spec in specs]
        if systolic is not None or diastolic is not None:
            measurements.append(ms.make("bloeddruk", [str(systolic or ""), str(diastolic or "")],
                                        datetime.now().astimezone()))
        bundle = ms.batch(measurements)
    except ms.MeasurementError as exc:
        raise click.ClickException(str(exc)) from None
    _send_bundle(bundle, dienst, bsn, code, settings)


def _send_bundle(bundle: dict[str, t.Any], dienst: str, bsn: str | None, code: str | None,
                 settings: dict[str, t.Any]) -> None:
    """Get a token for ``dienst`` and POST the batch ``bundle``; print each entry's outcome."""
    client, _, aanbieder = _setup(**settings)
    grant = _token(client, aanbieder, [dienst], bsn, code)
    try:
        answer = client.post_bundle(aanbieder, grant.access_token, bundle)
    except PgoError as exc:
        raise click.ClickException(str(exc)) from None
    for line in batch_outcome(answer):
        click.echo(line)


@pgo_group.command("send-documents", help="Get a token for 57 and send PDF documents (more than one: as a set).")
@_options
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title", help="Description of the set (and the title of a single document).")
@click.option("--dienst", default="57", show_default=True)
@_login_options
def send_documents(files: tuple[Path, ...], title: str | None, dienst: str, bsn: str | None, code: str | None,
                   **settings: t.Any) -> None:
    pairs = [((title if len(files) == 1 and title else f.stem), f.read_bytes()) for f in files]
    try:
        bundle = document_bundle(pairs, description=title)
    except DocumentError as exc:
        raise click.ClickException(str(exc)) from None
    _send_bundle(bundle, dienst, bsn, code, settings)


@pgo_group.command("questionnaires", help="Get a token for 59 and list the open questionnaire tasks and questions.")
@_options
@_login_options
@click.option("--json", "as_json", is_flag=True)
def questionnaires(bsn: str | None, code: str | None, as_json: bool, **settings: t.Any) -> None:
    client, _, aanbieder = _setup(**settings)
    grant = _token(client, aanbieder, ["59"], bsn, code)
    try:
        tasks = qs.open_tasks(client, aanbieder, grant.access_token)
        listing = []
        for task in tasks:
            questionnaire = qs.load_questionnaire(client, aanbieder, grant.access_token, task)
            questions = [{"linkId": q.link_id, "type": q.type, "text": q.text, "required": q.required,
                          "options": [code_ for code_, _ in q.options]}
                         for q in (qs.questions(questionnaire) if questionnaire else [])
                         if q.type not in ("group", "display")]
            listing.append({"task": task["id"], "title": qs.task_title(task),
                            "questionnaire": qs.questionnaire_reference(task), "available": questionnaire is not None,
                            "questions": questions})
    except PgoError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(listing, indent=1, ensure_ascii=False))
        return
    for item in listing:
        click.echo(f"task {item['task']}: {item['title']}" + ("" if item["available"] else " (questionnaire not "
                                                                                            "available)"))
        for question in item["questions"]:
            options = f" [{'|'.join(question['options'])}]" if question["options"] else ""
            click.echo(f"   {question['linkId']} ({question['type']}{', required' if question['required'] else ''})"
                       f"{options}: {question['text']}")


@pgo_group.command("answer", help="Answer a questionnaire task (59: accept; 60: send the answers), or decline it.")
@_options
@click.option("--task", "task_id", required=True, help="The Task id (see `dvza pgo questionnaires`).")
@click.option("--answers", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON object linkId → answer or list of answers ("ja"/"nee", numbers, dates, option codes).')
@click.option("--decline", is_flag=True, help="Do not fill it in (the task becomes 'rejected').")
@click.option("--bsn", help="Log in through the development login as this person (twice: for 59 and for 60).")
@click.option("--code", help="A code for 59 from a browser; then also --answers-code for 60.")
@click.option("--answers-code", help="A code for 60 from a browser.")
def answer(task_id: str, answers: Path | None, decline: bool, bsn: str | None, code: str | None,
           answers_code: str | None, **settings: t.Any) -> None:
    if bool(answers) == decline:
        raise click.ClickException("give either --answers FILE or --decline")
    form: dict[str, list[str]] = {}
    if answers:
        try:
            given = json.loads(answers.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise click.ClickException(f"{answers} is not JSON: {exc}") from None
        if not isinstance(given, dict):
            raise click.ClickException(f"{answers} must hold a JSON object linkId → answer")
        form = {f"q:{k}": [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in given.items()}
    client, _, aanbieder = _setup(**settings)
    grant = _token(client, aanbieder, ["59"], bsn, code)
    try:
        task = next((t_ for t_ in qs.open_tasks(client, aanbieder, grant.access_token) if t_.get("id") == task_id),
                    None)
        if task is None:
            raise click.ClickException(f"task {task_id} is not open for this person")
        if decline:
            qs.set_status(client, aanbieder, grant.access_token, task, "rejected")
            click.echo(f"task {task_id}: rejected")
            return
        questionnaire = qs.load_questionnaire(client, aanbieder, grant.access_token, task)
        if questionnaire is None:
            qs.set_status(client, aanbieder, grant.access_token, task, "failed")
            click.echo(f"task {task_id}: the questionnaire {qs.questionnaire_reference(task)} cannot be retrieved; "
                       "the task is set to failed", err=True)
            sys.exit(1)
        response, problems = qs.build_response(questionnaire, task, form)
        if problems:
            raise click.ClickException("; ".join(f"{k}: {v}" for k, v in problems.items()))
        task = qs.set_status(client, aanbieder, grant.access_token, task, "accepted")
        second = _token(client, aanbieder, ["60"], bsn, answers_code)
        outcome = client.post_bundle(aanbieder, second.access_token, qs.answers_transaction(aanbieder, task, response))
    except PgoError as exc:
        raise click.ClickException(str(exc)) from None
    for line in batch_outcome(outcome):
        click.echo(line)
