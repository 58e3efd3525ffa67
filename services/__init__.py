"""The long-running maskwatch services: capture, detector and dashboard."""
