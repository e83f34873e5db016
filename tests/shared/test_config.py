import pytest
from hallq.shared.config import BrokerURL, ConfigError, ConfigModel, load_config, parse_config


class Section(ConfigModel):
    id: str
    port: int = 1883


class Top(ConfigModel):
    device: Section
    names: list[str] = []


def test_valid_config_parses():
    cfg = parse_config('[device]\nid = "kiosk-1"\n', Top)
    assert cfg.device.id == "kiosk-1" and cfg.device.port == 1883


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[device]\nid = "k"\nprot = 1\n', "device: Object contains unknown field `prot`"),
        ('[device]\nid = "k"\n[extra]\n', "unknown field `extra`"),
        ('[device]\nport = 1\n', "device: Object missing required field `id`"),
        ('[device]\nid = "k"\nport = "x"\n', "device.port: Expected `int`, got `str`"),
        ('names = [1]\n[device]\nid = "k"\n', "names[0]"),
        ("[device\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(text, needle):
    with pytest.raises(ConfigError) as info:
        parse_config(text, Top, source="kiosk.toml")
    assert needle in str(info.value)
    assert str(info.value).startswith("kiosk.toml: ")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml", Top)


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("mqtt://127.0.0.1", "127.0.0.1", 1883, False, None, None),
        ("mqtt://broker:1884", "broker", 1884, False, None, None),
        ("mqtts://broker", "broker", 8883, True, None, None),
        ("mqtt://kiosk-1:s%40cret@broker", "broker", 1883, False, "kiosk-1", "s@cret"),
    ],
)
def test_broker_urls(url, host, port, tls, user, password):
    b = BrokerURL.parse(url, env={})
    assert (b.host, b.port, b.tls, b.username, b.password) == (host, port, tls, user, password)
    assert "cret" not in str(b)


def test_broker_credentials_from_environment():
    b = BrokerURL.parse("mqtt://broker", env={"HALLQ_MQTT_USERNAME": "pad-1", "HALLQ_MQTT_PASSWORD": "pw"})
    assert (b.username, b.password) == ("pad-1", "pw")


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://h:99999", "mqtt://h?bogus=1"])
def test_bad_broker_urls(url):
    with pytest.raises(ConfigError, match="broker URL"):
        BrokerURL.parse(url, env={})
