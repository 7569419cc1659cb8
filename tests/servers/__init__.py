"""Throwaway servers for integration tests: real MariaDB and PostgreSQL from Debian packages,
each started on a free port with its own data folder, or the docker-compose service when the
matching environment variable names one (see README)."""
