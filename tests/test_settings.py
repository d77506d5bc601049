"""Settings derived from others, as config/settings.py reads them from the environment."""

from config.settings import default_avatars_url, default_graphql_url, default_site_url, default_web_url


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


def test_the_sites_own_address_is_the_local_server_in_debug_and_the_first_allowed_host_otherwise():
    assert default_site_url(debug=True, https_only=False, allowed_hosts=["x.example.com"], port="") == (
        "http://127.0.0.1:8000"
    )
    assert default_site_url(debug=True, https_only=False, allowed_hosts=[], port="8123") == "http://127.0.0.1:8123"
    hosts = ["*", ".example.org", "members.example.com"]
    assert default_site_url(debug=False, https_only=True, allowed_hosts=hosts, port="") == "https://members.example.com"
    assert default_site_url(debug=False, https_only=False, allowed_hosts=["127.0.0.1"], port="9000") == (
        "http://127.0.0.1:9000"
    )
