"""``hallq provision``: every device of a hall its own identity, and the broker that enforces it.

- :mod:`.keyring`: the hall's keyring directory (CA, credentials, kiosk key, broker files) and its record;
- :mod:`.pki`: the hall CA and the broker's server certificate (``cryptography``);
- :mod:`.broker`: Mosquitto's ``mosquitto.conf``, password file (``$7$`` PBKDF2-SHA512) and ACL;
- :mod:`.bundle`: a device's bundle (``device.toml``, ``ca.crt``, the role's config);
- :mod:`.card`: writing a bundle onto a card's or an image's FAT boot partition with mtools;
- :mod:`.flash`: a role's image onto a card with bmaptool, then the bundle; :mod:`.pico`: a Pico W pad;
- :mod:`.apply`: installing the broker files on the controller and making Mosquitto reload them.
"""
