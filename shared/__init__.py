"""Code every maskwatch service uses: schemas, config, Redis helpers, models and the detection pipeline."""
