"""GitHub, and nothing of this product: the REST and GraphQL client, the GitHub App's and OAuth's
authentication, the webhook payloads and their signature. It takes a token and returns typed records;
it knows no model, run or event."""
