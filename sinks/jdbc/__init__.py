"""``type = "jdbc"``: change events applied to PostgreSQL or MySQL/MariaDB tables by primary
key, exactly once through two-phase commit (``PREPARE TRANSACTION`` / XA)."""
