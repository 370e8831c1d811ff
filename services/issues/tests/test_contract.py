"""The subgraph keeps the public contract: it composes with users, names match
api.graphql, and everything a front-end developer sees is described."""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLObjectType,
)

from veche_gateway.compose import compose
from veche_gateway.subgraph import load_subgraph
from veche_issues.schema import schema
from veche_users.schema import schema as users_schema

from .conftest import IssuesServer

FEDERATION = {
    "_Service",
    "_Any",
    "_Entity",
    "link__Import",
    "link__Purpose",
    "_FieldSet",
}
ROOTS = {"Query", "Mutation"}  # the root types themselves; their fields are described


async def test_sdl_composes_with_the_users_subgraph(issues: IssuesServer) -> None:
    sdl = (await issues.client.data("{ _service { sdl } }"))["_service"]["sdl"]
    supergraph = compose(
        [
            load_subgraph("users", "http://users/graphql", users_schema.as_str()),
            load_subgraph("issues", f"{issues.url}/graphql", sdl),
        ]
    )
    for line in (
        "reportedIssues(",
        "matchingIssues(",
        "issues(",
        "similarIssues(",
        "departmentStats:",
        "issueCategories:",
        "changeIssueStatus(",
        "acceptSolverOffer(",
    ):
        assert line in supergraph.sdl, line


def test_contract_names() -> None:
    types = schema._schema.type_map
    issue = types["Issue"]
    assert isinstance(issue, GraphQLObjectType)
    assert set(issue.fields) >= {
        "id", "kind", "title", "description", "category", "location", "address", "district",
        "photos", "status", "reporter", "department", "solver", "solverOffers", "supportersCount",
        "supportedByMe", "supportThreshold", "dueAt", "overdue", "comments", "history",
        "createdAt", "updatedAt", "assignee", "duplicateOf",
    }  # fmt: skip
    status = types["IssueStatus"]
    assert isinstance(status, GraphQLEnumType)
    assert list(status.values) == [
        "NEW", "ACCEPTED", "COLLECTING", "UNDER_REVIEW", "IN_PROGRESS", "RESOLVED", "CLOSED", "REJECTED",
    ]  # fmt: skip
    mutation = types["Mutation"]
    assert isinstance(mutation, GraphQLObjectType)
    assert set(mutation.fields) == {
        "reportIssue", "proposeInitiative", "supportIssue", "withdrawSupport", "commentOnIssue",
        "changeIssueStatus", "offerToSolve", "acceptSolverOffer", "markSolved",
        "confirmResolution", "reopenIssue", "confirmFix", "createOpen311Key", "revokeOpen311Key",
        "reportContent", "hideContent", "restoreContent",
        # The staff workflow (issue #20).
        "recategorizeIssue", "mergeIssues", "extendDeadline", "assignIssue", "unassignIssue",
        # The city's own configuration (issue #15).
        "createCategory", "renameCategory", "retireCategory", "createHoliday", "removeHoliday",
        "createCalendarDay", "removeCalendarDay",
    }  # fmt: skip
