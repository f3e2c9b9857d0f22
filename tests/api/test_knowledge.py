"""Knowledge through the API and a real worker: every format in, search out, duplicates, failures,
deletion and workspace isolation, against the real Postgres (pgvector, BM25) and the real MiniLM model."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from fpdf import FPDF
from sqlalchemy import text

from src.main import create_app
from tests.conftest import graphql, graphql_upload, signed_up, start_worker, stop_worker, subscription_updates

pytestmark = pytest.mark.slow

DOC_FIELDS = "id title status error chunkCount embeddedCount progress contentType metadata"
UPLOAD_ONE = f"""mutation($ws: ID!, $file: Upload!, $title: String, $metadata: JSON) {{
  uploadDocument(workspaceId: $ws, file: $file, title: $title, metadata: $metadata) {{
    __typename ... on UploadedDocuments {{ documents {{ duplicate document {{ {DOC_FIELDS} }} }} }}
    ... on Error {{ code message }} ... on InvalidInputError {{ field }} }} }}"""
UPLOAD_MANY = f"""mutation($ws: ID!, $documents: [DocumentInput!], $file: Upload) {{
  uploadDocuments(workspaceId: $ws, documents: $documents, file: $file) {{
    __typename ... on UploadedDocuments {{ documents {{ duplicate document {{ {DOC_FIELDS} }} }} }}
    ... on Error {{ code message }} ... on InvalidInputError {{ field }} }} }}"""
DOCUMENT = f"""query($ws: ID!, $id: ID!) {{ document(workspaceId: $ws, id: $id) {{
  __typename ... on Document {{ {DOC_FIELDS} }} ... on Error {{ code message }} }} }}"""
WATCH = f"""subscription($ws: ID!, $id: ID!) {{ document(workspaceId: $ws, id: $id) {{
  __typename ... on Document {{ {DOC_FIELDS} }} ... on Error {{ code message }} }} }}"""
DOCUMENTS = """query($ws: ID!, $first: Int!, $after: String) {
  documents(workspaceId: $ws, first: $first, after: $after) {
  __typename ... on DocumentConnection { items { id title } nextCursor } ... on Error { code message } } }"""
SEARCH = """query($ws: ID!, $q: String!, $mode: SearchMode!, $k: Int!, $filters: SearchFilterInput) {
  search(workspaceId: $ws, query: $q, mode: $mode, k: $k, filters: $filters) {
    __typename ... on SearchResults { hits { chunkId documentId documentTitle headingPath text score highlights
      vectorScore keywordScore } }
    ... on Error { code message } ... on InvalidInputError { field } } }"""
DELETE = """mutation($ws: ID!, $id: ID!) { deleteDocument(workspaceId: $ws, id: $id) {
  __typename ... on DeletedDocument { id } ... on Error { code message } } }"""
MODES = ["VECTOR", "KEYWORD", "HYBRID"]


@pytest.fixture(scope="module")
def knowledge_worker(test_env):
    process = start_worker(test_env, threads=2)
    yield process
    stop_worker(process)


def pdf_bytes(*paragraphs: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 8, paragraph)
        pdf.ln(4)
    return bytes(pdf.output())


def tag() -> str:
    """A word no other test run uses, so searches find this run's documents."""
    return "zq" + uuid.uuid4().hex[:8]


async def account(client) -> tuple[str, str]:
    payload = await signed_up(client)
    return payload["accessToken"], payload["user"]["workspaces"][0]["id"]


async def upload(client, token, ws, name, data, content_type, **variables) -> dict:
    body = await graphql_upload(client, UPLOAD_ONE, {"file": (name, data, content_type)}, token=token, ws=ws,
                                **variables)
    return body["data"]["uploadDocument"]


async def wait_until_settled(client, token, ws, document_id, timeout=180) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            document = (await graphql(client, DOCUMENT, token=token, ws=ws, id=document_id))["data"]["document"]
            if document["status"] in ("READY", "FAILED"):
                return document
            await asyncio.sleep(0.3)


async def search(client, token, ws, query, mode="HYBRID", k=10, filters=None) -> dict:
    return (await graphql(client, SEARCH, token=token, ws=ws, q=query, mode=mode, k=k, filters=filters))["data"][
        "search"]


async def test_every_format_is_ingested_by_a_worker_and_found_by_search(client, knowledge_worker, settings,
                                                                        container):
    token, ws = await account(client)
    word = tag()
    files = {
        "text": ("notes.txt", f"Plain notes about {word} glaciers melting in the Alps.\n\nSecond paragraph.".encode(),
                 "text/plain"),
        "markdown": ("guide.md", f"# Guide\n\n## Volcanoes\n\nThe {word} volcano erupted basalt lava.".encode(),
                     "text/markdown"),
        "html": ("page.html", f"<html><head><script>var x = 1;</script></head><body><nav>menu</nav><h1>Reef</h1>"
                              f"<p>Coral {word} reefs bleach in warm oceans.</p></body></html>".encode(), "text/html"),
        "pdf": ("paper.pdf", pdf_bytes("A study of desert dunes.", f"Sand {word} dunes migrate with the wind."),
                "application/pdf"),
    }
    ids = {}
    for kind, (name, data, content_type) in files.items():
        answer = await upload(client, token, ws, name, data, content_type, metadata={"kind": kind})
        assert answer["__typename"] == "UploadedDocuments", answer
        document = answer["documents"][0]["document"]
        assert document["status"] == "QUEUED" and document["title"] == name
        ids[kind] = document["id"]
    batch = "\n".join(json.dumps({"title": f"Batch {i}", "text": f"Batch item {i}: {word} comets {topic}.",
                                  "metadata": {"kind": "batch"}})
                      for i, topic in enumerate(["orbit the sun", "have icy tails"]))
    answer = (await graphql_upload(client, UPLOAD_MANY, {"file": ("batch.jsonl", batch.encode(), "application/jsonl")},
                                   token=token, ws=ws, documents=[{"title": "Inline", "text": f"Inline {word} moss."}]
                                   ))["data"]["uploadDocuments"]
    assert answer["__typename"] == "UploadedDocuments", answer
    assert [item["document"]["title"] for item in answer["documents"]] == ["Inline", "Batch 0", "Batch 1"]
    batch_ids = [item["document"]["id"] for item in answer["documents"]]

    # One document watched live over the subscription; it ends ready with every chunk embedded.
    app = create_app(settings, container)
    updates = await subscription_updates(app, WATCH, token, "document", timeout=180, ws=ws, id=ids["markdown"])
    assert updates[-1]["status"] == "READY" and updates[-1]["progress"] == 1.0
    assert updates[-1]["embeddedCount"] == updates[-1]["chunkCount"] >= 1
    for document_id in [*ids.values(), *batch_ids]:
        settled = await wait_until_settled(client, token, ws, document_id)
        assert settled["status"] == "READY", settled

    expectations = {"glaciers melting": "notes.txt", "volcano basalt lava": "guide.md",
                    "coral reefs bleach": "page.html", "sand dunes migrate wind": "paper.pdf",
                    "comets icy tails": "Batch 1"}
    for query, title in expectations.items():
        for mode in MODES:
            found = await search(client, token, ws, f"{word} {query}", mode=mode, k=3)
            assert found["__typename"] == "SearchResults", found
            assert found["hits"][0]["documentTitle"] == title, (mode, query, found["hits"])
    top = (await search(client, token, ws, "volcano basalt", mode="HYBRID", k=1))["hits"][0]
    assert top["headingPath"] == ["Guide", "Volcanoes"]
    assert any("<mark>" in fragment for fragment in top["highlights"])
    assert top["vectorScore"] is not None and top["keywordScore"] is not None
    html = (await search(client, token, ws, "coral reefs", mode="KEYWORD", k=1))["hits"][0]
    assert "var x" not in html["text"] and "menu" not in html["text"]

    filtered = await search(client, token, ws, f"{word} comets", k=10, filters={"metadata": {"kind": "pdf"}})
    assert {hit["documentTitle"] for hit in filtered["hits"]} == {"paper.pdf"}
    only = await search(client, token, ws, f"{word}", k=10, filters={"documentIds": [ids["text"]]})
    assert {hit["documentId"] for hit in only["hits"]} == {ids["text"]}


async def test_the_same_bytes_twice_are_one_document(client, container):
    token, ws = await account(client)
    data = f"Repeated content {tag()}".encode()
    first = await upload(client, token, ws, "a.txt", data, "text/plain")
    again = await upload(client, token, ws, "copy.txt", data, "text/plain")
    assert first["documents"][0]["duplicate"] is False
    assert again["documents"][0]["duplicate"] is True
    assert again["documents"][0]["document"]["id"] == first["documents"][0]["document"]["id"]
    listing = (await graphql(client, DOCUMENTS, token=token, ws=ws, first=10))["data"]["documents"]
    assert [item["title"] for item in listing["items"]] == ["a.txt"]


async def test_documents_are_listed_newest_first_page_by_page(client):
    token, ws = await account(client)
    for number in range(5):
        await upload(client, token, ws, f"doc{number}.txt", f"page test {number} {tag()}".encode(), "text/plain")
    seen, after = [], None
    while True:
        page = (await graphql(client, DOCUMENTS, token=token, ws=ws, first=2, after=after))["data"]["documents"]
        seen += [item["title"] for item in page["items"]]
        after = page["nextCursor"]
        if after is None:
            break
    assert seen == [f"doc{number}.txt" for number in reversed(range(5))]
    bad = (await graphql(client, DOCUMENTS, token=token, ws=ws, first=2, after="garbage"))["data"]["documents"]
    assert bad["__typename"] == "InvalidInputError"


async def test_malformed_files_fail_with_a_reason_and_the_worker_goes_on(client, knowledge_worker):
    token, ws = await account(client)
    broken_pdf = await upload(client, token, ws, "broken.pdf", b"%PDF-1.7 this is not really a pdf " + tag().encode(),
                              "application/pdf")
    not_utf8 = await upload(client, token, ws, "latin1.txt", "caf\xe9 ".encode("latin-1") + tag().encode(),
                            "text/plain")
    empty_html = await upload(client, token, ws, "empty.html", f"<script>{tag()}</script>".encode(), "text/html")
    healthy = await upload(client, token, ws, "fine.txt", f"healthy {tag()} document".encode(), "text/plain")
    reasons = {}
    for answer in (broken_pdf, not_utf8, empty_html):
        document = answer["documents"][0]["document"]
        settled = await wait_until_settled(client, token, ws, document["id"])
        assert settled["status"] == "FAILED" and settled["chunkCount"] == 0
        reasons[document["title"]] = settled["error"]
    assert "PDF could not be read" in reasons["broken.pdf"]
    assert "not UTF-8" in reasons["latin1.txt"]
    assert "no text" in reasons["empty.html"]
    fine = await wait_until_settled(client, token, ws, healthy["documents"][0]["document"]["id"])
    assert fine["status"] == "READY"


async def test_deleting_a_document_leaves_no_chunks_vectors_or_bytes(client, knowledge_worker, container):
    token, ws = await account(client)
    word = tag()
    long_text = "\n\n".join(f"Paragraph {n} about {word} lighthouses and their keepers." * 5 for n in range(20))
    answer = await upload(client, token, ws, "long.md", long_text.encode(), "text/markdown")
    document_id = answer["documents"][0]["document"]["id"]
    settled = await wait_until_settled(client, token, ws, document_id)
    assert settled["status"] == "READY" and settled["chunkCount"] > 3

    async def leftovers() -> list[int]:
        async with container.engine().connect() as connection:
            return [(await connection.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :id"),
                                              {"id": document_id})).scalar_one()
                    for table, column in (("chunks", "document_id"), ("chunk_embeddings", "document_id"),
                                          ("document_bodies", "document_id"), ("documents", "id"))]

    assert (await leftovers())[0] == settled["chunkCount"]
    deleted = (await graphql(client, DELETE, token=token, ws=ws, id=document_id))["data"]["deleteDocument"]
    assert deleted == {"__typename": "DeletedDocument", "id": document_id}
    assert await leftovers() == [0, 0, 0, 0]
    assert (await search(client, token, ws, f"{word} lighthouses"))["hits"] == []
    again = (await graphql(client, DELETE, token=token, ws=ws, id=document_id))["data"]["deleteDocument"]
    assert again["__typename"] == "NotFoundError"


async def test_search_never_crosses_workspaces(client, knowledge_worker):
    token_a, ws_a = await account(client)
    token_b, ws_b = await account(client)
    word = tag()
    mine = await upload(client, token_a, ws_a, "mine.txt", f"{word} nebula telescopes in workspace A".encode(),
                        "text/plain", metadata={"team": "shared"})
    theirs = await upload(client, token_b, ws_b, "theirs.txt", f"{word} nebula telescopes in workspace B".encode(),
                          "text/plain", metadata={"team": "shared"})
    mine_id = mine["documents"][0]["document"]["id"]
    theirs_id = theirs["documents"][0]["document"]["id"]
    assert (await wait_until_settled(client, token_a, ws_a, mine_id))["status"] == "READY"
    assert (await wait_until_settled(client, token_b, ws_b, theirs_id))["status"] == "READY"
    for mode in MODES:
        for filters in (None, {"metadata": {"team": "shared"}}, {"documentIds": [mine_id, theirs_id]}):
            found = await search(client, token_a, ws_a, f"{word} nebula telescopes", mode=mode, k=50, filters=filters)
            assert {hit["documentId"] for hit in found["hits"]} == {mine_id}, (mode, filters)
        only_theirs = await search(client, token_a, ws_a, f"{word} nebula", mode=mode,
                                   filters={"documentIds": [theirs_id]})
        assert only_theirs["hits"] == []
    body = await graphql(client, SEARCH, token=token_a, ws=ws_b, q="nebula", mode="HYBRID", k=5)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    peek = await graphql(client, DOCUMENT, token=token_a, ws=ws_a, id=theirs_id)
    assert peek["data"]["document"]["__typename"] == "NotFoundError"
    steal = await graphql(client, DELETE, token=token_a, ws=ws_a, id=theirs_id)
    assert steal["data"]["deleteDocument"]["__typename"] == "NotFoundError"


@pytest.mark.parametrize(("variables", "field"), [
    ({"q": "   "}, "query"),
    ({"q": "x" * 5000}, "query"),
    ({"k": 0}, "k"),
    ({"k": 1000}, "k"),
    ({"filters": {"documentIds": ["not-a-uuid"]}}, "filters.documentIds"),
    ({"filters": {"metadata": [1, 2]}}, "filters.metadata"),
])
async def test_bad_search_input_answers_a_typed_error(client, variables, field):
    token, ws = await account(client)
    sent = {"q": "anything", "mode": "HYBRID", "k": 5, "filters": None, **variables}
    found = (await graphql(client, SEARCH, token=token, ws=ws, **sent))["data"]["search"]
    assert found["__typename"] == "InvalidInputError" and found["field"] == field, found


async def test_bad_uploads_answer_typed_errors_and_store_nothing(client):
    token, ws = await account(client)
    cases = [
        (("x.bin", b"\x00\x01", "application/octet-stream"), {}, "contentType"),
        (("empty.txt", b"", "text/plain"), {}, "file"),
        (("a.txt", b"fine", "text/plain"), {"title": " "}, "title"),
        (("a.txt", b"fine", "text/plain"), {"metadata": [1]}, "metadata"),
    ]
    for file, variables, field in cases:
        answer = await upload(client, token, ws, *file, **variables)
        assert answer["__typename"] == "InvalidInputError" and answer["field"] == field, answer
    broken = {"file": ("b.jsonl", b'{"title": "x"}\n{oops', "application/jsonl")}
    bad_batch = (await graphql_upload(client, UPLOAD_MANY, broken, token=token, ws=ws))["data"]["uploadDocuments"]
    assert bad_batch["__typename"] == "InvalidInputError" and bad_batch["field"] == "file"
    half_bad = (await graphql(client, UPLOAD_MANY, token=token, ws=ws, file=None, documents=[
        {"title": "good", "text": "good text"}, {"title": "bad", "text": "x", "contentType": "image/png"}]
    ))["data"]["uploadDocuments"]
    assert half_bad["__typename"] == "InvalidInputError"
    listing = (await graphql(client, DOCUMENTS, token=token, ws=ws, first=10))["data"]["documents"]
    assert listing["items"] == []
