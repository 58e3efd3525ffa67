"""Phone cameras: pairing by QR code, the phone page and its WebSocket frame stream (docs/phone.md)."""
