"""Encrypted backups of the database and their restore (`gatehouse backup`, `restore`)."""
