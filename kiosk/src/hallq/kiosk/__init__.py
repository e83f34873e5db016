"""The ticket kiosk: where every citizen starts."""
