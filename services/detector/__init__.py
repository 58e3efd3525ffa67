"""Detector service: consumer-group workers that turn frames into published results."""
