"""Servers the project runs beside Kafka."""
