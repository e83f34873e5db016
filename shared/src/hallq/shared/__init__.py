"""The hall contract v1 shared by every hallq device and the controller.

- :mod:`hallq.shared.topics`: every topic string;
- :mod:`hallq.shared.schemas`: every payload's schema;
- :mod:`hallq.shared.config`: strict TOML config models and broker URLs;
- :mod:`hallq.shared.mqtt`: the MQTT client (availability, reconnect, requests);
- :mod:`hallq.shared.cli`: the ``hallq`` command.
"""

CONTRACT_VERSION = 1


def software_version(dist: str) -> str | None:
    """The installed version of a hallq package (``hallq-kiosk``), for the health messages."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
