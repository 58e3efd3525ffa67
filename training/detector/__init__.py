"""Fine-tuning the RetinaFace face detector on annotated scene photos (issue 7)."""
