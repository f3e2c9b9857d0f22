"""Workspaces: membership roles, and isolation: user A can never read or change B's workspace, whatever
id they guess, on every field that takes one."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import event, text

from tests.conftest import graphql, graphql_upload, signed_up
from tests.conversation_helpers import on_plan

WORKSPACE = "query($id: ID!) { workspace(id: $id) { __typename ... on Workspace { id name myRole members { email role } } ... on Error { code } } }"  # noqa: E501
RENAME = "mutation($id: ID!, $n: String!) { renameWorkspace(id: $id, name: $n) { __typename ... on Error { code message } } }"  # noqa: E501
DELETE = "mutation($id: ID!) { deleteWorkspace(id: $id) { __typename ... on Error { code } } }"
SET_MEMBER = "mutation($w: ID!, $e: String!, $r: WorkspaceRole!) { setMember(workspaceId: $w, email: $e, role: $r) { __typename ... on Member { email role } ... on Error { code message } } }"  # noqa: E501
REMOVE_MEMBER = "mutation($w: ID!, $u: ID!) { removeMember(workspaceId: $w, userId: $u) { __typename ... on Error { code message } } }"  # noqa: E501
CREATE = "mutation($n: String!) { createWorkspace(name: $n) { __typename ... on Workspace { id myRole } ... on Error { code } } }"  # noqa: E501
API_KEYS = "query($w: ID!) { apiKeys(workspaceId: $w) { id } }"
CREATE_KEY = "mutation($w: ID!) { createApiKey(workspaceId: $w, name: \"k\", scopes: [CONTENT_READ]) { __typename ... on CreatedApiKey { secret apiKey { id } } ... on Error { code } } }"  # noqa: E501
DOCS = "query($w: ID!) { documents(workspaceId: $w) { __typename } }"
DOC = "query($w: ID!, $id: ID!) { document(workspaceId: $w, id: $id) { __typename } }"
SEARCH = "query($w: ID!) { search(workspaceId: $w, query: \"secret\") { __typename } }"
UPLOAD_MANY = "mutation($w: ID!) { uploadDocuments(workspaceId: $w, documents: [{title: \"x\", text: \"x\"}]) { __typename } }"  # noqa: E501
UPLOAD_ONE = "mutation($w: ID!, $file: Upload!) { uploadDocument(workspaceId: $w, file: $file) { __typename } }"
DELETE_DOC = "mutation($w: ID!, $id: ID!) { deleteDocument(workspaceId: $w, id: $id) { __typename } }"
ENTITLEMENT = "query($w: ID!) { entitlement(workspaceId: $w) { __typename } }"
CHECKOUT = "mutation($w: ID!) { startCheckout(workspaceId: $w, plan: \"pro\") { __typename } }"
PORTAL = "mutation($w: ID!) { openBillingPortal(workspaceId: $w) { __typename } }"
CONVERSATIONS = "query($w: ID!) { conversations(workspaceId: $w) { __typename } }"
CONVERSATION = "query($w: ID!, $id: ID!) { conversation(workspaceId: $w, id: $id) { __typename } }"
MESSAGE = "query($w: ID!, $id: ID!) { message(workspaceId: $w, id: $id) { __typename } }"
MY_USAGE = "query($w: ID!) { myUsage(workspaceId: $w) { __typename } }"
WORKSPACE_USAGE = "query($w: ID!) { workspaceUsage(workspaceId: $w) { __typename } }"
CREATE_CONVERSATION = "mutation($w: ID!) { createConversation(workspaceId: $w) { __typename } }"
RENAME_CONVERSATION = "mutation($w: ID!, $id: ID!) { renameConversation(workspaceId: $w, id: $id, title: \"x\") { __typename } }"  # noqa: E501
DELETE_CONVERSATION = "mutation($w: ID!, $id: ID!) { deleteConversation(workspaceId: $w, id: $id) { __typename } }"
SUGGEST_TITLE = "mutation($w: ID!, $id: ID!) { suggestConversationTitle(workspaceId: $w, id: $id) { __typename } }"
STOP_ANSWER = "mutation($w: ID!, $id: ID!) { stopAnswer(workspaceId: $w, messageId: $id) { __typename } }"
RATE_ANSWER = "mutation($w: ID!, $id: ID!) { rateAnswer(workspaceId: $w, messageId: $id, rating: UP) { __typename } }"
FEEDBACK = "query($w: ID!) { answerFeedback(workspaceId: $w) { __typename } }"
ANALYTICS = "query($w: ID!) { answerAnalytics(workspaceId: $w) { __typename } }"
ENTITIES = 'query($w: ID!) { entities(workspaceId: $w, search: "a") { __typename } }'
ENTITY = "query($w: ID!, $id: ID!) { entity(workspaceId: $w, id: $id) { __typename } }"
PATH = "query($w: ID!, $a: ID!, $b: ID!) { path(workspaceId: $w, from: $a, to: $b) { __typename } }"
RECENT = "query($w: ID!, $u: ID!) { recentEntities(workspaceId: $w, uploadedBy: $u) { __typename } }"
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { __typename ... on ApiKey { revokedAt } ... on Error { code } } }"  # noqa: E501


def _denied(body: dict, field: str) -> bool:
    """Refused either by the field guard (GraphQL error FORBIDDEN) or as a typed error from the use case."""
    if body.get("errors"):
        return body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body["data"] is None
    return body["data"][field]["__typename"] in ("ForbiddenError", "NotFoundError")


async def test_user_a_cannot_touch_user_b_workspace_through_any_id(client):
    alice, bob = await signed_up(client), await signed_up(client)
    token = alice["accessToken"]
    bobs_workspace = bob["user"]["workspaces"][0]["id"]
    bobs_key = (await graphql(client, CREATE_KEY, w=bobs_workspace, token=bob["accessToken"]))["data"]["createApiKey"]
    attempts = [
        (WORKSPACE, {"id": bobs_workspace}, "workspace"),
        (API_KEYS, {"w": bobs_workspace}, "apiKeys"),
        (RENAME, {"id": bobs_workspace, "n": "mine now"}, "renameWorkspace"),
        (DELETE, {"id": bobs_workspace}, "deleteWorkspace"),
        (SET_MEMBER, {"w": bobs_workspace, "e": alice["user"]["email"], "r": "OWNER"}, "setMember"),
        (REMOVE_MEMBER, {"w": bobs_workspace, "u": bob["user"]["id"]}, "removeMember"),
        (CREATE_KEY, {"w": bobs_workspace}, "createApiKey"),
        (REVOKE_KEY, {"id": bobs_key["apiKey"]["id"]}, "revokeApiKey"),
        (WORKSPACE, {"id": str(uuid.uuid4())}, "workspace"),  # an id that does not exist answers the same
        (DOCS, {"w": bobs_workspace}, "documents"),
        (DOC, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "document"),
        (SEARCH, {"w": bobs_workspace}, "search"),
        (UPLOAD_MANY, {"w": bobs_workspace}, "uploadDocuments"),
        (DELETE_DOC, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "deleteDocument"),
        (ENTITLEMENT, {"w": bobs_workspace}, "entitlement"),
        (CHECKOUT, {"w": bobs_workspace}, "startCheckout"),
        (PORTAL, {"w": bobs_workspace}, "openBillingPortal"),
        (CONVERSATIONS, {"w": bobs_workspace}, "conversations"),
        (CONVERSATION, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "conversation"),
        (MESSAGE, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "message"),
        (MY_USAGE, {"w": bobs_workspace}, "myUsage"),
        (WORKSPACE_USAGE, {"w": bobs_workspace}, "workspaceUsage"),
        (CREATE_CONVERSATION, {"w": bobs_workspace}, "createConversation"),
        (RENAME_CONVERSATION, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "renameConversation"),
        (DELETE_CONVERSATION, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "deleteConversation"),
        (SUGGEST_TITLE, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "suggestConversationTitle"),
        (STOP_ANSWER, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "stopAnswer"),
        (RATE_ANSWER, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "rateAnswer"),
        (FEEDBACK, {"w": bobs_workspace}, "answerFeedback"),
        (ANALYTICS, {"w": bobs_workspace}, "answerAnalytics"),
        (ENTITIES, {"w": bobs_workspace}, "entities"),
        (ENTITY, {"w": bobs_workspace, "id": str(uuid.uuid4())}, "entity"),
        (PATH, {"w": bobs_workspace, "a": str(uuid.uuid4()), "b": str(uuid.uuid4())}, "path"),
        (RECENT, {"w": bobs_workspace, "u": bob["user"]["id"]}, "recentEntities"),
    ]
    for query, variables, field in attempts:
        assert _denied(await graphql(client, query, token=token, **variables), field), field
    upload = await graphql_upload(client, UPLOAD_ONE, {"file": ("a.txt", b"mine now", "text/plain")}, token=token,
                                  w=bobs_workspace)
    assert _denied(upload, "uploadDocument")
    still = (await graphql(client, WORKSPACE, id=bobs_workspace, token=bob["accessToken"]))["data"]["workspace"]
    assert still["name"] == bob["user"]["workspaces"][0]["name"]
    assert [m["email"] for m in still["members"]] == [bob["user"]["email"]]
    keys = (await graphql(client, API_KEYS, w=bobs_workspace, token=bob["accessToken"]))["data"]["apiKeys"]
    assert keys == [{"id": bobs_key["apiKey"]["id"]}]


async def test_every_root_field_taking_an_id_is_in_the_isolation_test(client):
    """New fields with ids must be added to the test above: introspection finds them."""
    covered = {"workspace", "apiKeys", "renameWorkspace", "deleteWorkspace", "setMember", "removeMember",
               "createApiKey", "revokeApiKey", "documents", "document", "search", "uploadDocument",
               "uploadDocuments", "deleteDocument", "entitlement", "startCheckout", "openBillingPortal",
               "conversations", "conversation", "message", "myUsage", "workspaceUsage", "createConversation",
               "renameConversation", "deleteConversation", "suggestConversationTitle", "entities", "entity", "path",
               "recentEntities", "stopAnswer", "rateAnswer", "answerFeedback", "answerAnalytics"}
    # operator/admin fields (global permissions), not tenant data
    not_workspace_data = {"workerProbe", "auditLog", "setUserRole", "billingOverview"}
    query = """{ __schema { queryType { fields { name args { type { name ofType { name } } } } }
                 mutationType { fields { name args { type { name ofType { name } } } } } } }"""
    schema = (await graphql(client, query))["data"]["__schema"]
    with_ids = {
        field["name"]
        for root in (schema["queryType"], schema["mutationType"])
        for field in root["fields"]
        if any("ID" in (arg["type"]["name"], (arg["type"]["ofType"] or {}).get("name")) for arg in field["args"])
    }
    assert with_ids - not_workspace_data == covered


async def test_members_read_owners_manage(client, container):
    owner, member = await signed_up(client), await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    await on_plan(container, uuid.UUID(workspace), "team")  # seats for more than the owner
    added = await graphql(client, SET_MEMBER, w=workspace, e=member["user"]["email"], r="MEMBER",
                          token=owner["accessToken"])
    assert added["data"]["setMember"] == {"__typename": "Member", "email": member["user"]["email"], "role": "MEMBER"}
    seen = (await graphql(client, WORKSPACE, id=workspace, token=member["accessToken"]))["data"]["workspace"]
    assert seen["myRole"] == "MEMBER" and {m["role"] for m in seen["members"]} == {"OWNER", "MEMBER"}
    assert _denied(await graphql(client, RENAME, id=workspace, n="x", token=member["accessToken"]), "renameWorkspace")
    assert _denied(await graphql(client, CREATE_KEY, w=workspace, token=member["accessToken"]), "createApiKey")
    renamed = await graphql(client, RENAME, id=workspace, n="Team", token=owner["accessToken"])
    assert renamed["data"]["renameWorkspace"]["__typename"] == "Workspace"
    gone = await graphql(client, REMOVE_MEMBER, w=workspace, u=member["user"]["id"], token=owner["accessToken"])
    assert gone["data"]["removeMember"] == {"__typename": "Ok"}
    assert _denied(await graphql(client, WORKSPACE, id=workspace, token=member["accessToken"]), "workspace")


async def test_the_last_owner_stays(client):
    owner = await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    demote = await graphql(client, SET_MEMBER, w=workspace, e=owner["user"]["email"], r="MEMBER",
                           token=owner["accessToken"])
    assert demote["data"]["setMember"]["__typename"] == "InvalidInputError"
    leave = await graphql(client, REMOVE_MEMBER, w=workspace, u=owner["user"]["id"], token=owner["accessToken"])
    assert leave["data"]["removeMember"]["__typename"] == "InvalidInputError"


async def test_adding_someone_who_has_no_account_is_not_found(client):
    owner = await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    body = await graphql(client, SET_MEMBER, w=workspace, e="nobody-here@example.com", r="MEMBER",
                         token=owner["accessToken"])
    assert body["data"]["setMember"]["__typename"] == "NotFoundError"


async def test_deleting_a_workspace_removes_it_and_what_it_holds(client, container):
    owner = await signed_up(client)
    created = (await graphql(client, CREATE, n="Scratch", token=owner["accessToken"]))["data"]["createWorkspace"]
    assert created["myRole"] == "OWNER"
    await graphql(client, CREATE_KEY, w=created["id"], token=owner["accessToken"])
    assert (await graphql(client, DELETE, id=created["id"], token=owner["accessToken"]))["data"]["deleteWorkspace"] \
        == {"__typename": "Ok"}
    async with container.engine().connect() as connection:
        left = (await connection.execute(text("SELECT count(*) FROM api_keys WHERE workspace_id = :w"),
                                         {"w": created["id"]})).scalar_one()
    assert left == 0


async def test_a_bad_workspace_name_names_the_field(client):
    owner = await signed_up(client)
    body = await graphql(client, RENAME, id=owner["user"]["workspaces"][0]["id"], n="   ", token=owner["accessToken"])
    assert body["data"]["renameWorkspace"]["__typename"] == "InvalidInputError"


async def test_a_new_member_needs_a_free_seat_and_two_at_once_cannot_share_the_last(client, container):
    owner = await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    free = await signed_up(client)
    refused = (await graphql(client, SET_MEMBER, w=workspace, e=free["user"]["email"], r="MEMBER",
                             token=owner["accessToken"]))["data"]["setMember"]
    assert refused["__typename"] == "QuotaExceededError" and "1 seat" in refused["message"]
    await on_plan(container, uuid.UUID(workspace), "pro")  # 5 seats: the owner and 4 more
    people = [await signed_up(client) for _ in range(6)]
    answers = await asyncio.gather(*(graphql(client, SET_MEMBER, w=workspace, e=p["user"]["email"], r="MEMBER",
                                             token=owner["accessToken"]) for p in people))
    kinds = sorted(a["data"]["setMember"]["__typename"] for a in answers)
    assert kinds == ["Member"] * 4 + ["QuotaExceededError"] * 2
    members = (await graphql(client, WORKSPACE, id=workspace, token=owner["accessToken"]))["data"]["workspace"]
    assert len(members["members"]) == 5
    # changing the role of someone already in takes no seat
    inside = next(a["data"]["setMember"]["email"] for a in answers if a["data"]["setMember"]["__typename"] == "Member")
    promoted = await graphql(client, SET_MEMBER, w=workspace, e=inside, r="OWNER", token=owner["accessToken"])
    assert promoted["data"]["setMember"] == {"__typename": "Member", "email": inside, "role": "OWNER"}


async def test_a_query_reads_the_callers_membership_once_for_all_its_guards_and_use_cases(client, container):
    owner = await signed_up(client)
    workspace = owner["user"]["workspaces"][0]["id"]
    reads: list[str] = []

    def note(connection, cursor, statement, *rest) -> None:
        if "FROM memberships" in statement:
            reads.append(statement)

    event.listen(container.engine().sync_engine, "before_cursor_execute", note)
    try:
        both = "query($w: ID!) { search(workspaceId: $w, query: \"x\") { __typename } " \
               "documents(workspaceId: $w) { __typename } }"
        answer = await graphql(client, both, w=workspace, token=owner["accessToken"])
        assert answer["data"]["search"]["__typename"] == "SearchResults", answer
        assert len(reads) == 1  # the guards of both fields and the search use case asked once between them
        reads.clear()
        await graphql(client, both, w=workspace, token=owner["accessToken"])
        assert len(reads) == 1  # the next operation asks again: nothing is kept between operations
    finally:
        event.remove(container.engine().sync_engine, "before_cursor_execute", note)
