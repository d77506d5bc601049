"""Every GraphQL document the client sends. tests/test_graphql_conformance.py validates each one
against GitHub's published schema (../shared/github/schema.graphql)."""

# https://docs.github.com/en/graphql/reference/objects#organization (membersWithRole)
# https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api
# rateLimit costs nothing extra and tells when the window resets, should the next page be refused.
ORGANIZATION_MEMBERS = """
query OrganizationMembers($login: String!, $first: Int!, $after: String) {
  organization(login: $login) {
    id
    databaseId
    login
    membersWithRole(first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        role
        node {
          id
          databaseId
          login
          name
          email
          avatarUrl
        }
      }
    }
  }
  rateLimit {
    cost
    remaining
    resetAt
  }
}
"""
