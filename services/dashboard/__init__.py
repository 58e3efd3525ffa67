"""The dashboard service: live compliance pages, JSON API, photo upload and Prometheus metrics."""

# HTTPS certificate and key files when no --tls-* option is given (containers: mounted files); the
# healthcheck (services/healthcheck.py) reads them too, so this package stays free of imports
TLS_CERT_ENV, TLS_KEY_ENV = "MASKWATCH_TLS_CERT", "MASKWATCH_TLS_KEY"
