"""Kafka: a local KRaft broker for development and tests, and topic administration."""
