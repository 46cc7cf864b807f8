import pytest

from monitor.errors import SettingsError
from monitor.settings import load_settings


def test_defaults_use_the_embedded_sqlite_database():
    s = load_settings({})
    assert s.database_url == "sqlite+aiosqlite:///negahban.db"
    assert (s.listen_host, s.listen_port) == ("127.0.0.1", 8080)


@pytest.mark.parametrize("env, fragment", [
    ({"NEGAHBAN_LISTEN_PORT": "eighty"}, "NEGAHBAN_LISTEN_PORT='eighty'"),
    ({"NEGAHBAN_LISTEN_PORT": "70000"}, "NEGAHBAN_LISTEN_PORT='70000'"),
    ({"NEGAHBAN_LOG_LEVEL": "LOUD"}, "NEGAHBAN_LOG_LEVEL='LOUD'"),
    ({"NEGAHBAN_DATABASE_URL": "mysql://x"}, "NEGAHBAN_DATABASE_URL='mysql://x'"),
    ({"NEGAHBAN_LISTN_PORT": "1"}, "NEGAHBAN_LISTN_PORT='1': unknown setting"),
])
def test_an_invalid_setting_names_the_variable_and_its_value(env, fragment):
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert fragment in str(err.value)


def test_a_settings_file_is_read_and_the_environment_wins(tmp_path):
    f = tmp_path / "negahban.yaml"
    f.write_text("listen_port: 9000\nlog_level: DEBUG\n")
    s = load_settings({"NEGAHBAN_CONFIG_FILE": str(f), "NEGAHBAN_LOG_LEVEL": "ERROR"})
    assert s.listen_port == 9000 and s.log_level == "ERROR"


def test_a_broken_settings_file_is_a_settings_error(tmp_path):
    f = tmp_path / "negahban.yaml"
    f.write_text("listen_port: [unclosed\n")
    with pytest.raises(SettingsError, match="NEGAHBAN_CONFIG_FILE"):
        load_settings({"NEGAHBAN_CONFIG_FILE": str(f)})


@pytest.mark.parametrize("content", [None, "not a certificate\n", "-----BEGIN CERTIFICATE-----\nAAAA\n"
                                     "-----END CERTIFICATE-----\n"])
async def test_a_trust_ca_file_that_is_not_pem_certificates_stops_start_up_naming_it(tmp_path, content):
    from negahban.service import build_service

    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_text(content, encoding="ascii")
    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/ngb.db", trust_ca_file=str(ca_file))
    with pytest.raises(SettingsError, match=f"NEGAHBAN_TRUST_CA_FILE={ca_file}"):
        await build_service(settings)
