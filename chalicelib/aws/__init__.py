"""Thin adapters over AWS services (SES, S3)."""
