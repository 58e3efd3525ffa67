"""Capture service: pulls camera feeds into one Redis stream per camera."""
