"""The SMS gateway (短信取号): citizens take and follow numbers by text through a GSM/4G modem."""
