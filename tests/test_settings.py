"""Settings derived from others, as config/settings.py reads them from the environment."""

from config.settings import default_avatars_url, default_graphql_url, default_web_url


def test_an_enterprise_server_api_base_gives_its_web_and_graphql_urls():
    assert default_web_url("https://ghe.example.com/api/v3") == "https://ghe.example.com"
    assert default_graphql_url("https://ghe.example.com/api/v3") == "https://ghe.example.com/api/graphql"


def test_github_coms_api_base_gives_github_coms_web_and_graphql_urls():
    assert default_web_url("https://api.github.com") == "https://github.com"
    assert default_graphql_url("https://api.github.com") == "https://api.github.com/graphql"


def test_avatars_come_from_githubs_avatar_host_or_the_servers_own():
    assert default_avatars_url("https://github.com") == "https://avatars.githubusercontent.com"
    assert default_avatars_url("https://ghe.example.com") == "https://ghe.example.com"
    assert default_avatars_url("http://127.0.0.1:8123") == "http://127.0.0.1:8123"
