"""The dashboard service: live compliance pages, JSON API, photo upload and Prometheus metrics."""
